/*
 * test_reach.c - reaching back and bounded publishing in moq-ffi, used from C as an application
 * would, under ASan/LSan/UBSan and valgrind (scripts/c-tests.sh): moq_fetch_group,
 * MOQ_START_GROUPS_BACK, moq_query_track, moq_client_transport, and the publish buffer cap
 * (publish_buffer_bytes / publish_overflow) with its counters. The C counterparts of
 * tests/fetch.rs, tests/publish_memory.rs and tests/websocket.rs.
 *
 * Build (see scripts/c-tests.sh):
 *   gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude -Itests/c tests/c/test_reach.c \
 *       -Ltarget/debug -lmoq_ffi -Wl,-rpath,$PWD/target/debug -lpthread -o test_reach
 *
 * Usage: test_reach [--quick]
 *   --quick  every section, with less data (a 40-object group instead of 200 for the
 *            destroy-while-fetching case, 32 x 256 KiB bursts instead of 64) and without the
 *            query of an unannounced namespace (it waits out the client's timeout): for valgrind.
 *
 * Sections: 1 fetch a past group (callbacks, never published, poll mode, destroy while it runs,
 * hostile calls), 2 join N groups back, 3 track query (+ versions that cannot fetch or query),
 * 4 transport name, 5 publisher memory (ERROR and DROP_OLDEST policies, bad settings, an
 * old-size MoqStats).
 *
 * Everything goes through the embedded relay (moq_relay_start("127.0.0.1:0")), its certificate
 * pinned by fingerprint.
 *
 * Environment: MOQ_TEST_TIME_SCALE=N multiplies every timeout (10 under valgrind) and, at most
 * 4x, the settle times that watch for callbacks that must not come. Every wait is a deadline
 * loop with short sleeps.
 *
 * Ends with moq_shutdown() (as test_objects does: see the note at the end of its main), so no
 * linger is needed before exit. Prints "N passed, M failed" as its last line; exits 1 if any
 * check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "moq_ffi.h"
#include "check.h"
#include "clock.h"
#include "results.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------ */
/* Time, scale, results                                                                         */
/* ------------------------------------------------------------------------------------------ */

static int g_scale = 1; /* MOQ_TEST_TIME_SCALE */

/* A timeout scaled for slow runs. */
static long scaled(long ms) { return ms * g_scale; }

/* How long to watch for something that must not happen (a callback after a terminal status or
 * after a destroy). Scaled at most 4x: a shorter watch can miss a bug but never fails a correct
 * library. */
static void settle(long ms) { sleep_ms(ms * (g_scale < 4 ? g_scale : 4)); }

/* Bounded wait: re-evaluates `cond` every few ms until it holds or `timeout_ms` passed. */
#define WAIT_UNTIL(cond, timeout_ms)                                                               \
    do {                                                                                           \
        int64_t wait_deadline_ = now_ms() + (timeout_ms);                                          \
        while (!(cond) && now_ms() < wait_deadline_) sleep_ms(3);                                  \
    } while (0)

static const char *safe(const char *s) { return s ? s : "(null)"; }

static const char *g_ctx = ""; /* what a hostile loop is testing, for failure messages */

/* The call succeeds: MOQ_OK and no message. */
#define EXPECT_OK(call)                                                                            \
    do {                                                                                           \
        Res r_ = take(call);                                                                       \
        CHECK(r_.code == MOQ_OK && !r_.had_message, "%s: got %s (%s)", #call, code_name(r_.code), \
              r_.message);                                                                         \
    } while (0)

/* The call fails with `want`, a message, and moq_last_error_code() == want. */
#define EXPECT_ERR(call, want)                                                                     \
    do {                                                                                           \
        prime_last_error(want);                                                                    \
        MoqResult raw_ = (call);                                                                   \
        MoqResultCode last_ = moq_last_error_code();                                               \
        Res r_ = take(raw_);                                                                       \
        CHECK(r_.code == (want) && r_.had_message && last_ == (want),                              \
              "[%s] %s: want %s, got %s (%s), moq_last_error_code %s", g_ctx, #call,               \
              code_name(want), code_name(r_.code), r_.message, code_name(last_));                  \
    } while (0)

/* As EXPECT_ERR, and the message contains `needle`. */
#define EXPECT_ERR_MSG(call, want, needle)                                                         \
    do {                                                                                           \
        prime_last_error(want);                                                                    \
        MoqResult raw_ = (call);                                                                   \
        MoqResultCode last_ = moq_last_error_code();                                               \
        Res r_ = take(raw_);                                                                       \
        CHECK(r_.code == (want) && last_ == (want) && strstr(r_.message, (needle)) != NULL,        \
              "[%s] %s: want %s naming \"%s\", got %s (%s), moq_last_error_code %s", g_ctx, #call, \
              code_name(want), (needle), code_name(r_.code), r_.message, code_name(last_));        \
    } while (0)

/* A pointer-returning call fails: NULL, and moq_last_error_code() == want. */
#define EXPECT_NULL(call, want)                                                                    \
    do {                                                                                           \
        prime_last_error(want);                                                                    \
        const void *p_ = (const void *)(call);                                                     \
        MoqResultCode last_ = moq_last_error_code();                                               \
        CHECK(p_ == NULL && last_ == (want), "[%s] %s: want NULL + %s, got %s + %s (%s)", g_ctx,   \
              #call, code_name(want), p_ ? "non-NULL" : "NULL", code_name(last_),                  \
              safe(moq_last_error()));                                                             \
    } while (0)

/* As EXPECT_NULL, and moq_last_error() contains `needle`. */
#define EXPECT_NULL_MSG(call, want, needle)                                                        \
    do {                                                                                           \
        prime_last_error(want);                                                                    \
        const void *p_ = (const void *)(call);                                                     \
        MoqResultCode last_ = moq_last_error_code();                                               \
        const char *msg_ = safe(moq_last_error());                                                 \
        CHECK(p_ == NULL && last_ == (want) && strstr(msg_, (needle)) != NULL,                     \
              "[%s] %s: want NULL + %s naming \"%s\", got %s + %s (%s)", g_ctx, #call,             \
              code_name(want), (needle), p_ ? "non-NULL" : "NULL", code_name(last_), msg_);        \
    } while (0)

/* ------------------------------------------------------------------------------------------ */
/* Relay and clients                                                                            */
/* ------------------------------------------------------------------------------------------ */

static MoqRelay *g_relay;
static char g_url[256];
static char g_fingerprint[256];
static char g_version[64];   /* protocol version negotiated by default */
static int g_has_timestamps; /* it carries timestamp_us */
static MoqClient *g_pub;     /* publishing client, lives for the whole run */
static MoqClient *g_sub;     /* subscribing client (callback mode), lives for the whole run */

static MoqClientConfig pinned_config(void) {
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = (uint32_t)sizeof(MoqClientConfig);
    long timeout = scaled(5000);
    config.connect_timeout_ms = (uint32_t)(timeout > 300000 ? 300000 : timeout);
    config.tls_fingerprint_sha256 = g_fingerprint;
    return config;
}

static MoqClient *connect_with(MoqClientConfig *config) {
    MoqClient *client = moq_client_create_ex(config);
    CHECK(client != NULL, "moq_client_create_ex: %s", safe(moq_last_error()));
    if (!client) return NULL;
    Res r = take(moq_connect(client, g_url, NULL, NULL));
    CHECK(r.code == MOQ_OK, "moq_connect(%s): %s %s", g_url, code_name(r.code), r.message);
    return client;
}

static MoqClient *connected_client(void) {
    MoqClientConfig config = pinned_config();
    return connect_with(&config);
}

static MoqClient *client_speaking(const char *versions) {
    MoqClientConfig config = pinned_config();
    config.versions = versions;
    return connect_with(&config);
}

static MoqPublisher *publisher_with(MoqClient *client, const char *ns, const char *track, uint8_t priority,
                                    uint32_t retention_ms) {
    MoqPublisherOptions options = moq_publisher_options_default();
    options.priority = priority;
    options.retention_ms = retention_ms;
    MoqPublisher *pub = moq_create_publisher_opts(client, ns, track, &options);
    CHECK(pub != NULL, "moq_create_publisher_opts(%s/%s): %s", ns, track, safe(moq_last_error()));
    return pub;
}

static MoqTrackProperties properties(void) {
    MoqTrackProperties p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    return p;
}

/* Payload of object `o` in the group published `g`-th: "g<g>o<o>". */
static size_t payload_of(int g, int o, char *buf, size_t size) {
    int n = snprintf(buf, size, "g%do%d", g, o);
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

static uint64_t timestamp_of(int g, int o) { return 5000000u + (uint64_t)g * 1000u + (uint64_t)o; }

/* Publishes groups first..first+count-1 of `per_group` objects each with begin_group /
 * publish_object / end_group; writes their ids to ids[first..]. Returns 1 if every call
 * succeeded. */
static int publish_groups(MoqPublisher *pub, int first, int count, int per_group, uint64_t *ids) {
    int ok = 1;
    for (int g = first; g < first + count; g++) {
        ids[g] = UINT64_MAX;
        Res r = take(moq_publisher_begin_group(pub, &ids[g]));
        if (r.code != MOQ_OK) ok = 0;
        for (int o = 0; o < per_group; o++) {
            char payload[32];
            size_t len = payload_of(g, o, payload, sizeof payload);
            r = take(moq_publish_object(pub, (const uint8_t *)payload, len, timestamp_of(g, o)));
            if (r.code != MOQ_OK) ok = 0;
        }
        r = take(moq_publisher_end_group(pub));
        if (r.code != MOQ_OK) ok = 0;
        if (g > first && ids[g] <= ids[g - 1]) ok = 0;
    }
    CHECK(ok, "published groups %d..%d (%d objects each) with increasing ids", first, first + count - 1, per_group);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Feed: what a callback-mode fetch or subscription received                                    */
/* ------------------------------------------------------------------------------------------ */

#define FEED_OBJECTS 512
#define FEED_STATUSES 8
#define FEED_KEEP 32 /* payload bytes kept per object */

typedef struct {
    pthread_mutex_t mutex;
    MoqObjectInfo info[FEED_OBJECTS];
    char data[FEED_OBJECTS][FEED_KEEP];
    size_t len[FEED_OBJECTS];
    size_t count;
    int overflow;
    MoqSubscriptionStatus status[FEED_STATUSES];
    char message[FEED_STATUSES][160];
    int statuses;
    size_t objects_before_subscribed; /* objects delivered before SUBSCRIBED (must be 0) */
    int subscribed;
    int terminal;       /* a terminal status arrived */
    int after_terminal; /* callbacks after it (must stay 0) */
    long delay_ms;      /* each object callback sleeps this long (outside the lock) */
    int in_callback;    /* a callback is running now */
    int stopped;        /* set once moq_subscriber_destroy returned */
    int after_stop;     /* callbacks that started after that (must stay 0) */
} Feed;

static void feed_init(Feed *f) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mutex, NULL);
}

static void feed_free(Feed *f) { pthread_mutex_destroy(&f->mutex); }

static size_t feed_count(Feed *f) {
    pthread_mutex_lock(&f->mutex);
    size_t n = f->count;
    pthread_mutex_unlock(&f->mutex);
    return n;
}

static int feed_terminal(Feed *f) {
    pthread_mutex_lock(&f->mutex);
    int t = f->terminal;
    pthread_mutex_unlock(&f->mutex);
    return t;
}

static int feed_subscribed(Feed *f) {
    pthread_mutex_lock(&f->mutex);
    int s = f->subscribed;
    pthread_mutex_unlock(&f->mutex);
    return s;
}

static void on_object(void *user_data, const MoqObjectInfo *info, const uint8_t *data, size_t data_len) {
    Feed *f = (Feed *)user_data;
    pthread_mutex_lock(&f->mutex);
    if (f->stopped) f->after_stop++;
    if (f->terminal) f->after_terminal++;
    f->in_callback = 1;
    if (f->count < FEED_OBJECTS) {
        size_t keep = data_len < FEED_KEEP ? data_len : FEED_KEEP;
        f->info[f->count] = *info;
        if (keep) memcpy(f->data[f->count], data, keep);
        f->len[f->count] = data_len;
        f->count++;
    } else {
        f->overflow = 1;
    }
    long delay = f->delay_ms;
    pthread_mutex_unlock(&f->mutex);
    if (delay > 0) sleep_ms(delay);
    pthread_mutex_lock(&f->mutex);
    f->in_callback = 0;
    pthread_mutex_unlock(&f->mutex);
}

static void on_status(void *user_data, MoqSubscriptionStatus status, uint32_t code, const char *message) {
    Feed *f = (Feed *)user_data;
    (void)code;
    pthread_mutex_lock(&f->mutex);
    if (f->stopped) f->after_stop++;
    if (f->terminal) f->after_terminal++;
    if (f->statuses < FEED_STATUSES) {
        f->status[f->statuses] = status;
        snprintf(f->message[f->statuses], sizeof f->message[0], "%s", message ? message : "(NULL message)");
    }
    f->statuses++;
    if (status == MOQ_SUBSCRIPTION_SUBSCRIBED && !f->subscribed) {
        f->subscribed = 1;
        f->objects_before_subscribed = f->count;
    }
    if (status != MOQ_SUBSCRIPTION_SUBSCRIBED) f->terminal = 1;
    pthread_mutex_unlock(&f->mutex);
}

/* Exactly one terminal status, `want`, as the last one; SUBSCRIBED came first; nothing after. */
static void check_one_terminal(Feed *f, MoqSubscriptionStatus want, const char *what) {
    pthread_mutex_lock(&f->mutex);
    int terminals = 0;
    for (int i = 0; i < f->statuses && i < FEED_STATUSES; i++)
        if (f->status[i] != MOQ_SUBSCRIPTION_SUBSCRIBED) terminals++;
    int last = f->statuses > 0 && f->statuses <= FEED_STATUSES ? f->statuses - 1 : 0;
    CHECK(terminals == 1, "%s: exactly one terminal status (got %d)", what, terminals);
    CHECK(f->statuses > 0 && f->status[last] == want, "%s: last status %s, want %s (%s)", what,
          f->statuses ? status_name(f->status[last]) : "-", status_name(want), f->statuses ? f->message[last] : "");
    CHECK(f->after_terminal == 0, "%s: %d callbacks after the terminal status", what, f->after_terminal);
    pthread_mutex_unlock(&f->mutex);
}

static MoqSubscriber *fetch_feed(MoqClient *client, const char *ns, const char *track, uint64_t group, Feed *f) {
    MoqSubscriber *sub = moq_fetch_group(client, ns, track, group, NULL, on_object, on_status, f);
    CHECK(sub != NULL, "moq_fetch_group(%s/%s, %llu): %s %s", ns, track, (unsigned long long)group,
          code_name(moq_last_error_code()), safe(moq_last_error()));
    return sub;
}

/* Destroys `sub` and marks the feed stopped once the destroy returned. */
static void destroy_feed_sub(MoqSubscriber *sub, Feed *f) {
    moq_subscriber_destroy(sub);
    pthread_mutex_lock(&f->mutex);
    f->stopped = 1;
    pthread_mutex_unlock(&f->mutex);
}

/* ------------------------------------------------------------------------------------------ */
/* 1. moq_fetch_group                                                                           */
/* ------------------------------------------------------------------------------------------ */

#define FETCH_NS "reach/fetch"
#define FETCH_GROUPS 5
#define FETCH_PER_GROUP 3

static uint64_t g_fetch_ids[64]; /* ids of the groups published on FETCH_NS/t */

/* The objects of `f` are group `g` (published g-th) whole, in order. */
static void check_group_objects(Feed *f, int g, const char *what) {
    pthread_mutex_lock(&f->mutex);
    CHECK(f->count == FETCH_PER_GROUP, "%s: %zu objects, want %d", what, f->count, FETCH_PER_GROUP);
    for (size_t i = 0; i < f->count && i < FETCH_PER_GROUP; i++) {
        char want[32];
        size_t len = payload_of(g, (int)i, want, sizeof want);
        const MoqObjectInfo *info = &f->info[i];
        CHECK(info->group_id == g_fetch_ids[g] && info->object_id == i,
              "%s: object %zu is group %llu object %llu, want group %llu object %zu", what, i,
              (unsigned long long)info->group_id, (unsigned long long)info->object_id,
              (unsigned long long)g_fetch_ids[g], i);
        CHECK(f->len[i] == len && memcmp(f->data[i], want, len) == 0, "%s: object %zu payload %.*s, want %s", what,
              i, (int)(f->len[i] < FEED_KEEP ? f->len[i] : FEED_KEEP), f->data[i], want);
        CHECK(info->delivery_mode == MOQ_DELIVERY_STREAM, "%s: object %zu mode %u", what, i, info->delivery_mode);
        if (g_has_timestamps)
            CHECK(info->timestamp_us == timestamp_of(g, (int)i), "%s: object %zu timestamp %llu, want %llu", what, i,
                  (unsigned long long)info->timestamp_us, (unsigned long long)timestamp_of(g, (int)i));
    }
    CHECK(f->subscribed && f->objects_before_subscribed == 0, "%s: SUBSCRIBED before the objects (%d, %zu before)",
          what, f->subscribed, f->objects_before_subscribed);
    pthread_mutex_unlock(&f->mutex);
}

/* Poll-mode view of a fetch: its objects and statuses in order. */
typedef struct {
    MoqObjectInfo info[16];
    char data[16][FEED_KEEP];
    size_t len[16];
    size_t count;
    MoqSubscriptionStatus status[8];
    int statuses;
    size_t objects_before_subscribed;
    int subscribed, ended, after_end, foreign, null_message;
} Polled;

static void poll_into(MoqClient *client, MoqSubscriber *sub, Polled *p, uint32_t timeout_ms) {
    MoqEvent events[16];
    size_t n = moq_poll(client, events, 16, timeout_ms);
    CHECK(n <= 16, "moq_poll returned %zu > max_events", n);
    for (size_t i = 0; i < n && i < 16; i++) {
        const MoqEvent *e = &events[i];
        if (e->kind != MOQ_EVENT_OBJECT && e->kind != MOQ_EVENT_STATUS) continue;
        if (e->subscriber != sub) {
            p->foreign++;
            continue;
        }
        if (p->ended) p->after_end++;
        if (e->kind == MOQ_EVENT_OBJECT) {
            if (p->count < 16) {
                size_t keep = e->data_len < FEED_KEEP ? e->data_len : FEED_KEEP;
                p->info[p->count] = e->object;
                if (keep) memcpy(p->data[p->count], e->data, keep);
                p->len[p->count] = e->data_len;
            }
            p->count++;
        } else {
            if (e->message == NULL) p->null_message++;
            if (p->statuses < 8) p->status[p->statuses] = e->status;
            p->statuses++;
            if (e->status == MOQ_SUBSCRIPTION_SUBSCRIBED && !p->subscribed) {
                p->subscribed = 1;
                p->objects_before_subscribed = p->count;
            }
            if (e->status != MOQ_SUBSCRIPTION_SUBSCRIBED) p->ended = 1;
        }
    }
}

static void test_fetch(int quick) {
    printf("-- 1. moq_fetch_group: a past group by callbacks, never published, poll mode, destroy while\n"
           "      fetching, hostile calls\n");
    Feed a, missing, slow, early;
    feed_init(&a);
    feed_init(&missing);
    feed_init(&slow);
    feed_init(&early);
    MoqPublisher *pub = publisher_with(g_pub, FETCH_NS, "t", 200, 600000);
    MoqPublisher *big = NULL;
    MoqClient *poller = NULL, *idle = NULL, *gone = NULL;
    MoqSubscriber *fa = NULL, *fm = NULL, *fp = NULL, *fs = NULL, *fe = NULL;
    if (!pub || !publish_groups(pub, 0, FETCH_GROUPS, FETCH_PER_GROUP, g_fetch_ids)) goto out;
    printf("   published %d groups x %d objects, ids %llu..%llu\n", FETCH_GROUPS, FETCH_PER_GROUP,
           (unsigned long long)g_fetch_ids[0], (unsigned long long)g_fetch_ids[FETCH_GROUPS - 1]);

    /* Group 2 by callbacks: SUBSCRIBED, its 3 objects in order, ENDED once. */
    int64_t t0 = now_ms();
    fa = fetch_feed(g_sub, FETCH_NS, "t", g_fetch_ids[2], &a);
    if (fa) {
        WAIT_UNTIL(feed_terminal(&a), scaled(10000));
        pthread_mutex_lock(&a.mutex);
        printf("   group 2 fetched in %lld ms (object priority %u)\n", (long long)(now_ms() - t0),
               a.count ? a.info[0].priority : 0);
        pthread_mutex_unlock(&a.mutex);
        settle(100);
        check_one_terminal(&a, MOQ_SUBSCRIPTION_ENDED, "fetch of group 2");
        check_group_objects(&a, 2, "fetch of group 2");
        CHECK(!moq_is_subscribed(fa), "a finished fetch is not subscribed");
        MoqStats stats;
        memset(&stats, 0, sizeof stats);
        stats.struct_size = (uint32_t)sizeof stats;
        EXPECT_OK(moq_subscriber_stats(fa, &stats));
        CHECK(stats.objects_received == FETCH_PER_GROUP, "fetch stats: %llu objects received",
              (unsigned long long)stats.objects_received);
        destroy_feed_sub(fa, &a);
        fa = NULL;
    }

    /* The same from the publishing client itself (its own broadcast, through its local origin). */
    {
        Feed own;
        feed_init(&own);
        MoqSubscriber *fo = fetch_feed(g_pub, FETCH_NS, "t", g_fetch_ids[1], &own);
        if (fo) {
            WAIT_UNTIL(feed_terminal(&own), scaled(10000));
            settle(50);
            check_one_terminal(&own, MOQ_SUBSCRIPTION_ENDED, "fetch of group 1 by the publishing client");
            check_group_objects(&own, 1, "fetch of group 1 by the publishing client");
            destroy_feed_sub(fo, &own);
        }
        feed_free(&own);
    }

    /* A group that was never published: NOT_FOUND, no object. */
    uint64_t never = g_fetch_ids[FETCH_GROUPS - 1] + 1000;
    t0 = now_ms();
    fm = fetch_feed(g_sub, FETCH_NS, "t", never, &missing);
    if (fm) {
        WAIT_UNTIL(feed_terminal(&missing), scaled(15000));
        pthread_mutex_lock(&missing.mutex);
        printf("   never-published group %llu: %s in %lld ms (%s)\n", (unsigned long long)never,
               missing.statuses ? status_name(missing.status[missing.statuses - 1]) : "(nothing)",
               (long long)(now_ms() - t0), missing.statuses ? missing.message[missing.statuses - 1] : "");
        pthread_mutex_unlock(&missing.mutex);
        settle(100);
        check_one_terminal(&missing, MOQ_SUBSCRIPTION_NOT_FOUND, "fetch of a never-published group");
        CHECK(feed_count(&missing) == 0, "no object for a never-published group (%zu)", feed_count(&missing));
        destroy_feed_sub(fm, &missing);
        fm = NULL;
    }

    /* Poll mode: NULL callbacks, drained with moq_poll on this thread. */
    poller = connected_client();
    if (poller) {
        MoqSubscribeOptions popts = moq_subscribe_options_default();
        popts.delivery = MOQ_DELIVER_POLL;
        fp = moq_fetch_group(poller, FETCH_NS, "t", g_fetch_ids[4], &popts, NULL, NULL, NULL);
        CHECK(fp != NULL, "moq_fetch_group(poll): %s", safe(moq_last_error()));
        if (fp) {
            Polled p;
            memset(&p, 0, sizeof p);
            int64_t deadline = now_ms() + scaled(10000);
            while (!p.ended && now_ms() < deadline) poll_into(poller, fp, &p, 50);
            /* Anything after the terminal status would show up here. */
            int64_t quiet = now_ms() + 100;
            while (now_ms() < quiet) poll_into(poller, fp, &p, 20);
            CHECK(p.ended && p.statuses >= 1 && p.status[(p.statuses < 8 ? p.statuses : 8) - 1] == MOQ_SUBSCRIPTION_ENDED,
                  "poll fetch ended with ENDED (%d statuses, last %s)", p.statuses,
                  p.statuses ? status_name(p.status[(p.statuses < 8 ? p.statuses : 8) - 1]) : "-");
            CHECK(p.subscribed && p.objects_before_subscribed == 0 && p.statuses == 2,
                  "poll fetch: SUBSCRIBED first, then ENDED only (%d statuses)", p.statuses);
            CHECK(p.after_end == 0 && p.foreign == 0 && p.null_message == 0,
                  "poll fetch: %d events after ENDED, %d of another subscriber, %d NULL messages", p.after_end,
                  p.foreign, p.null_message);
            CHECK(p.count == FETCH_PER_GROUP, "poll fetch: %zu objects, want %d", p.count, FETCH_PER_GROUP);
            for (size_t i = 0; i < p.count && i < FETCH_PER_GROUP; i++) {
                char want[32];
                size_t len = payload_of(4, (int)i, want, sizeof want);
                CHECK(p.info[i].group_id == g_fetch_ids[4] && p.info[i].object_id == i && p.len[i] == len &&
                          memcmp(p.data[i], want, len) == 0,
                      "poll fetch object %zu: group %llu object %llu, want %llu/%zu (%s)", i,
                      (unsigned long long)p.info[i].group_id, (unsigned long long)p.info[i].object_id,
                      (unsigned long long)g_fetch_ids[4], i, want);
            }
            moq_subscriber_destroy(fp);
            fp = NULL;
            CHECK(moq_poll(poller, NULL, 0, 0) == 0, "moq_poll(NULL, 0) after the destroy");
        }
    }

    /* Destroy a fetch while it runs: a long group, an object callback that takes its time; the
       destroy comes after the first object. After it returns, no callback runs. */
    int big_n = quick ? 40 : 200;
    big = publisher_with(g_pub, FETCH_NS, "big", 127, 600000);
    if (big) {
        uint64_t big_id = UINT64_MAX;
        int ok = 1;
        Res r = take(moq_publisher_begin_group(big, &big_id));
        if (r.code != MOQ_OK) ok = 0;
        uint8_t payload[1024];
        for (int i = 0; i < big_n; i++) {
            memset(payload, 'a' + i % 26, sizeof payload);
            r = take(moq_publish_object(big, payload, sizeof payload, (uint64_t)i));
            if (r.code != MOQ_OK) ok = 0;
        }
        r = take(moq_publisher_end_group(big));
        if (r.code != MOQ_OK) ok = 0;
        CHECK(ok, "published a group of %d x 1 KiB", big_n);
        slow.delay_ms = 10;
        fs = ok ? fetch_feed(g_sub, FETCH_NS, "big", big_id, &slow) : NULL;
        if (fs) {
            WAIT_UNTIL(feed_count(&slow) >= 1 || feed_terminal(&slow), scaled(10000));
            CHECK(feed_count(&slow) >= 1, "the long fetch started delivering (%zu objects, terminal %d)",
                  feed_count(&slow), feed_terminal(&slow));
            int64_t d0 = now_ms();
            destroy_feed_sub(fs, &slow);
            long destroy_ms = (long)(now_ms() - d0);
            size_t at_destroy = feed_count(&slow);
            pthread_mutex_lock(&slow.mutex);
            int in_callback = slow.in_callback;
            pthread_mutex_unlock(&slow.mutex);
            CHECK(!in_callback, "no callback running once moq_subscriber_destroy returned");
            settle(200);
            pthread_mutex_lock(&slow.mutex);
            CHECK(slow.after_stop == 0, "no callback after the destroy returned (%d)", slow.after_stop);
            CHECK(slow.count == at_destroy, "no object after the destroy (%zu -> %zu)", at_destroy, slow.count);
            CHECK(!slow.terminal || slow.count == (size_t)big_n,
                  "no terminal status for a fetch destroyed mid-way (%d statuses, %zu objects)", slow.statuses,
                  slow.count);
            pthread_mutex_unlock(&slow.mutex);
            CHECK(at_destroy < (size_t)big_n, "the destroy came while the fetch was running (%zu of %d delivered)",
                  at_destroy, big_n);
            printf("   destroyed a fetch after %zu of %d objects (destroy took %ld ms)\n", at_destroy, big_n,
                   destroy_ms);
            prime_last_error(MOQ_ERROR_INVALID_HANDLE);
            CHECK(!moq_is_subscribed(fs) && moq_last_error_code() == MOQ_ERROR_INVALID_HANDLE,
                  "the destroyed fetch handle is released (%s)", code_name(moq_last_error_code()));
            moq_subscriber_destroy(fs); /* double destroy: ignored */
            fs = NULL;
        }
        /* Destroyed at once, before the fetch was answered: nothing is ever called. */
        fe = ok ? fetch_feed(g_sub, FETCH_NS, "big", big_id, &early) : NULL;
        if (fe) {
            destroy_feed_sub(fe, &early);
            fe = NULL;
            settle(200);
            pthread_mutex_lock(&early.mutex);
            CHECK(early.after_stop == 0, "no callback after an immediate destroy (%d)", early.after_stop);
            pthread_mutex_unlock(&early.mutex);
        }
    }

    /* Hostile calls. */
    g_ctx = "fetch hostile";
    {
        MoqSubscribeOptions popts = moq_subscribe_options_default();
        popts.delivery = MOQ_DELIVER_POLL;
        MoqSubscribeOptions bad = moq_subscribe_options_default();
        bad.struct_size = 3;
        Feed dummy;
        feed_init(&dummy);
        idle = moq_client_create_ex(&(MoqClientConfig){.struct_size = sizeof(MoqClientConfig)});
        CHECK(idle != NULL, "an unconnected client: %s", safe(moq_last_error()));
        gone = moq_client_create_ex(&(MoqClientConfig){.struct_size = sizeof(MoqClientConfig)});
        moq_client_destroy(gone); /* a destroyed handle */

        EXPECT_NULL(moq_fetch_group(NULL, FETCH_NS, "t", 0, NULL, on_object, on_status, &dummy),
                    MOQ_ERROR_INVALID_HANDLE);
        EXPECT_NULL(moq_fetch_group((MoqClient *)(uintptr_t)0x99, FETCH_NS, "t", 0, NULL, on_object, on_status, &dummy),
                    MOQ_ERROR_INVALID_HANDLE);
        EXPECT_NULL(moq_fetch_group((MoqClient *)(uintptr_t)0xdeadbeefcafe0ull, FETCH_NS, "t", 0, NULL, on_object,
                                    on_status, &dummy),
                    MOQ_ERROR_INVALID_HANDLE);
        EXPECT_NULL(moq_fetch_group(gone, FETCH_NS, "t", 0, NULL, on_object, on_status, &dummy),
                    MOQ_ERROR_INVALID_HANDLE);
        if (pub)
            EXPECT_NULL(moq_fetch_group((MoqClient *)pub, FETCH_NS, "t", 0, NULL, on_object, on_status, &dummy),
                        MOQ_ERROR_INVALID_HANDLE); /* a handle of another type */
        EXPECT_NULL(moq_fetch_group(g_sub, NULL, "t", 0, NULL, on_object, on_status, &dummy),
                    MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_NULL(moq_fetch_group(g_sub, FETCH_NS, NULL, 0, NULL, on_object, on_status, &dummy),
                    MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_NULL(moq_fetch_group(g_sub, "", "t", 0, NULL, on_object, on_status, &dummy), MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_NULL(moq_fetch_group(g_sub, FETCH_NS, "\xff\xfe", 0, NULL, on_object, on_status, &dummy),
                    MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_NULL(moq_fetch_group(g_sub, "reach//fetch", "t", 0, NULL, on_object, on_status, &dummy),
                    MOQ_ERROR_INVALID_ARGUMENT);
        /* Callbacks with poll delivery; no on_object with callback delivery; bad options. */
        EXPECT_NULL_MSG(moq_fetch_group(g_sub, FETCH_NS, "t", 0, &popts, on_object, NULL, &dummy),
                        MOQ_ERROR_INVALID_ARGUMENT, "MOQ_DELIVER_POLL");
        EXPECT_NULL(moq_fetch_group(g_sub, FETCH_NS, "t", 0, &popts, NULL, on_status, &dummy),
                    MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_NULL_MSG(moq_fetch_group(g_sub, FETCH_NS, "t", 0, NULL, NULL, NULL, NULL), MOQ_ERROR_INVALID_ARGUMENT,
                        "on_object");
        EXPECT_NULL(moq_fetch_group(g_sub, FETCH_NS, "t", 0, &bad, on_object, on_status, &dummy),
                    MOQ_ERROR_INVALID_ARGUMENT);
        if (idle)
            EXPECT_NULL(moq_fetch_group(idle, FETCH_NS, "t", 0, NULL, on_object, on_status, &dummy),
                        MOQ_ERROR_NOT_CONNECTED);
        settle(100);
        pthread_mutex_lock(&dummy.mutex);
        CHECK(dummy.count == 0 && dummy.statuses == 0, "refused fetches call nothing (%zu objects, %d statuses)",
              dummy.count, dummy.statuses);
        pthread_mutex_unlock(&dummy.mutex);
        feed_free(&dummy);
    }
    g_ctx = "";
    CHECK(moq_is_connected(g_sub), "the fetching client is still connected");
out:
    g_ctx = "";
    moq_subscriber_destroy(fa);
    moq_subscriber_destroy(fm);
    moq_subscriber_destroy(fp);
    moq_subscriber_destroy(fs);
    moq_subscriber_destroy(fe);
    moq_client_destroy(idle);
    moq_client_destroy(poller);
    moq_publisher_destroy(big);
    moq_publisher_destroy(pub);
    feed_free(&a);
    feed_free(&missing);
    feed_free(&slow);
    feed_free(&early);
}

/* ------------------------------------------------------------------------------------------ */
/* 2. MOQ_START_GROUPS_BACK                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void test_groups_back(void) {
    printf("-- 2. MOQ_START_GROUPS_BACK: start_group 2 on a track of 6 groups, then live groups\n");
    uint64_t ids[16];
    Feed f;
    feed_init(&f);
    MoqSubscriber *sub = NULL;
    MoqPublisher *pub = publisher_with(g_pub, "reach/join", "t", 127, 600000);
    if (!pub || !publish_groups(pub, 0, 6, 3, ids)) goto out;
    MoqSubscribeOptions options = moq_subscribe_options_default();
    options.start = MOQ_START_GROUPS_BACK;
    options.start_group = 2;
    sub = moq_subscribe_ex(g_sub, "reach/join", "t", &options, on_object, on_status, &f);
    CHECK(sub != NULL, "moq_subscribe_ex(GROUPS_BACK): %s", safe(moq_last_error()));
    if (!sub) goto out;
    WAIT_UNTIL(feed_count(&f) >= 9 || feed_terminal(&f), scaled(10000));
    settle(150);
    /* The join point is counted back from the newest group the subscription has seen within
       its first second (LATEST_WAIT in src/core/subscribe/run.rs). Where the held groups arrive
       slower than that (valgrind), it starts earlier: more groups, never fewer, still in order.
       So: exactly the newest 3 groups at normal speed; under a time scale, a prefix of older
       groups may come first, and the last objects are the newest 3 groups then the live ones. */
    size_t extra = 0;
    pthread_mutex_lock(&f.mutex);
    if (g_scale > 1 && f.count >= 9) extra = (f.count - 9) / 3 * 3;
    pthread_mutex_unlock(&f.mutex);
    CHECK(feed_count(&f) == 9 + extra, "the newest group and the 2 before it: %zu objects, want %zu", feed_count(&f),
          9 + extra);
    CHECK(feed_subscribed(&f) && !feed_terminal(&f), "SUBSCRIBED, still live");
    /* Live groups after the join. */
    if (!publish_groups(pub, 6, 2, 3, ids)) goto out;
    WAIT_UNTIL(feed_count(&f) >= 15 + extra || feed_terminal(&f), scaled(10000));
    settle(100);
    pthread_mutex_lock(&f.mutex);
    CHECK(f.count == 15 + extra, "9 held objects then 6 live ones: %zu (+%zu older)", f.count, extra);
    char got[512] = "";
    size_t used = 0;
    int in_order = f.count == 15 + extra;
    for (size_t i = 0; i < f.count && i < FEED_OBJECTS; i++) {
        int g = i < extra ? (int)(i / 3) + (3 - (int)(extra / 3)) : 3 + (int)((i - extra) / 3);
        int o = (int)(i % 3);
        if (i < 15 + extra && g >= 0) {
            char want[32];
            size_t len = payload_of(g, o, want, sizeof want);
            if (f.info[i].group_id != ids[g] || f.info[i].object_id != (uint64_t)o || f.len[i] != len ||
                memcmp(f.data[i], want, len) != 0)
                in_order = 0;
        }
        if (used < sizeof got - 48)
            used += (size_t)snprintf(got + used, sizeof got - used, "%s%llu/%llu", i ? "," : "",
                                     (unsigned long long)f.info[i].group_id, (unsigned long long)f.info[i].object_id);
    }
    CHECK(in_order, "groups 3,4,5 (held) then 6,7 (live), objects 0..2 each, in order; got (group/object) %s", got);
    CHECK(f.objects_before_subscribed == 0, "SUBSCRIBED came before the objects (%zu before)",
          f.objects_before_subscribed);
    pthread_mutex_unlock(&f.mutex);
    printf("   received (group/object): %s\n", got);
    /* The subscribing client now knows the newest group: moq_query_track reports it. */
    {
        MoqTrackProperties p = properties();
        Res q = take(moq_query_track(g_sub, "reach/join", "t", &p));
        CHECK(q.code == MOQ_OK && p.has_latest_group && p.latest_group == ids[7],
              "query while subscribed: %s (%s), has_latest_group %u, latest %llu, want %llu", code_name(q.code),
              q.message, p.has_latest_group, (unsigned long long)p.latest_group, (unsigned long long)ids[7]);
    }
    /* More groups back than the track has: every held group. */
    {
        Feed all;
        feed_init(&all);
        options.start_group = 100;
        MoqSubscriber *s2 = moq_subscribe_ex(g_sub, "reach/join", "t", &options, on_object, on_status, &all);
        CHECK(s2 != NULL, "moq_subscribe_ex(GROUPS_BACK 100): %s", safe(moq_last_error()));
        if (s2) {
            WAIT_UNTIL(feed_count(&all) >= 24 || feed_terminal(&all), scaled(10000));
            settle(150);
            pthread_mutex_lock(&all.mutex);
            char seen[256] = "";
            size_t at = 0;
            for (size_t i = 0; i < all.count && at < sizeof seen - 24; i++)
                at += (size_t)snprintf(seen + at, sizeof seen - at, "%s%llu", i ? "," : "",
                                       (unsigned long long)all.info[i].group_id);
            printf("   100 groups back: %zu objects: %s\n", all.count, seen);
            int all_in_order = all.count == 24;
            for (size_t i = 0; i < all.count && i < 24; i++)
                if (all.info[i].group_id != ids[i / 3] || all.info[i].object_id != i % 3) all_in_order = 0;
            CHECK(all_in_order, "100 groups back on a track of 8 groups: every held group in order (%zu objects: %s)",
                  all.count, seen);
            pthread_mutex_unlock(&all.mutex);
            destroy_feed_sub(s2, &all);
        }
        feed_free(&all);
    }
out:
    if (sub) destroy_feed_sub(sub, &f);
    moq_publisher_destroy(pub);
    feed_free(&f);
}

/* ------------------------------------------------------------------------------------------ */
/* 3. moq_query_track                                                                           */
/* ------------------------------------------------------------------------------------------ */

static void query_and_check(MoqClient *client, const char *who, uint64_t latest) {
    char version[64] = "";
    Res v = take(moq_client_protocol_version(client, version, sizeof version));
    CHECK(v.code == MOQ_OK, "%s: protocol version: %s", who, v.message);
    MoqTrackProperties p = properties();
    int64_t t0 = now_ms();
    Res r = take(moq_query_track(client, "reach/query", "t", &p));
    CHECK(r.code == MOQ_OK && !r.had_message, "%s (%s): moq_query_track: %s %s", who, version, code_name(r.code),
          r.message);
    printf("   %s (%s): priority %u, retention %llu ms, timescale %llu, latest group %s%llu, in %lld ms\n", who,
           version, p.priority, (unsigned long long)p.retention_ms, (unsigned long long)p.timescale,
           p.has_latest_group ? "" : "unknown ", (unsigned long long)p.latest_group, (long long)(now_ms() - t0));
    if (r.code != MOQ_OK) return;
    CHECK(p.struct_size == sizeof p, "%s: struct_size kept (%u)", who, p.struct_size);
    /* moq-lite-05+ carries the publisher's declaration; moq-transport has no such property
       (tests/fetch.rs makes the same exception). */
    if (strncmp(version, "moq-transport-", 14) != 0) {
        CHECK(p.priority == 200, "%s: priority %u, want 200", who, p.priority);
        CHECK(p.retention_ms == 20000, "%s: retention %llu ms, want 20000", who, (unsigned long long)p.retention_ms);
        CHECK(p.timescale == 1000000, "%s: timescale %llu, want 1000000 (µs)", who, (unsigned long long)p.timescale);
    }
    if (p.has_latest_group)
        CHECK(p.latest_group <= latest, "%s: latest group %llu beyond the newest published %llu", who,
              (unsigned long long)p.latest_group, (unsigned long long)latest);
}

static void test_query(int quick) {
    printf("-- 3. moq_query_track: what the publisher declared; struct and argument errors; moq-lite-04\n");
    uint64_t ids[4];
    MoqClient *lite05 = NULL, *lite04 = NULL;
    MoqPublisher *pub = publisher_with(g_pub, "reach/query", "t", 200, 20000);
    if (!pub || !publish_groups(pub, 0, 2, 2, ids)) goto out;

    query_and_check(g_sub, "default versions", ids[1]);
    lite05 = client_speaking("moq-lite-05");
    if (lite05) query_and_check(lite05, "moq-lite-05 client", ids[1]);

    /* A track nobody publishes: NOT_FOUND. */
    {
        MoqTrackProperties p = properties();
        int64_t t0 = now_ms();
        Res r = take(moq_query_track(g_sub, "reach/query", "nobody", &p));
        printf("   query of an unpublished track: %s (%s) in %lld ms\n", code_name(r.code), r.message,
               (long long)(now_ms() - t0));
        CHECK(r.code == MOQ_ERROR_NOT_FOUND, "query of an unpublished track: %s %s", code_name(r.code), r.message);
    }
    /* An unannounced namespace: NOT_FOUND after the client's timeout (5 s; skipped by --quick). */
    if (!quick) {
        MoqTrackProperties p = properties();
        int64_t t0 = now_ms();
        Res r = take(moq_query_track(g_sub, "reach/nobody", "t", &p));
        printf("   query in an unannounced namespace: %s (%s) in %lld ms\n", code_name(r.code), r.message,
               (long long)(now_ms() - t0));
        CHECK(r.code == MOQ_ERROR_NOT_FOUND, "query in an unannounced namespace: %s %s", code_name(r.code), r.message);
    }

    g_ctx = "query hostile";
    {
        MoqTrackProperties wrong = properties();
        wrong.struct_size = 4;
        EXPECT_ERR_MSG(moq_query_track(g_sub, "reach/query", "t", &wrong), MOQ_ERROR_INVALID_ARGUMENT, "struct_size");
        CHECK(wrong.struct_size == 4 && wrong.priority == 0 && wrong.retention_ms == 0,
              "a refused query writes nothing");
        wrong.struct_size = (uint32_t)sizeof wrong + 8;
        EXPECT_ERR(moq_query_track(g_sub, "reach/query", "t", &wrong), MOQ_ERROR_INVALID_ARGUMENT);
        wrong.struct_size = 0;
        EXPECT_ERR(moq_query_track(g_sub, "reach/query", "t", &wrong), MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_ERR(moq_query_track(g_sub, "reach/query", "t", NULL), MOQ_ERROR_INVALID_ARGUMENT);
        MoqTrackProperties p = properties();
        EXPECT_ERR(moq_query_track(g_sub, NULL, "t", &p), MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_ERR(moq_query_track(g_sub, "reach/query", NULL, &p), MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_ERR(moq_query_track(g_sub, "reach/query", "", &p), MOQ_ERROR_INVALID_ARGUMENT);
        EXPECT_ERR(moq_query_track(NULL, "reach/query", "t", &p), MOQ_ERROR_INVALID_HANDLE);
        EXPECT_ERR(moq_query_track((MoqClient *)(uintptr_t)0x99, "reach/query", "t", &p), MOQ_ERROR_INVALID_HANDLE);
        EXPECT_ERR(moq_query_track((MoqClient *)pub, "reach/query", "t", &p), MOQ_ERROR_INVALID_HANDLE);
        MoqClient *idle = moq_client_create_ex(&(MoqClientConfig){.struct_size = sizeof(MoqClientConfig)});
        CHECK(idle != NULL, "an unconnected client: %s", safe(moq_last_error()));
        if (idle) EXPECT_ERR(moq_query_track(idle, "reach/query", "t", &p), MOQ_ERROR_NOT_CONNECTED);
        moq_client_destroy(idle);
    }

    /* moq-lite-04 cannot fetch or query: UNSUPPORTED, the message naming the version. */
    g_ctx = "moq-lite-04";
    lite04 = client_speaking("moq-lite-04");
    if (lite04) {
        char version[64] = "";
        Res v = take(moq_client_protocol_version(lite04, version, sizeof version));
        CHECK(v.code == MOQ_OK && strcmp(version, "moq-lite-04") == 0, "negotiated %s (%s)", version, v.message);
        Feed dummy;
        feed_init(&dummy);
        EXPECT_NULL_MSG(moq_fetch_group(lite04, "reach/query", "t", ids[0], NULL, on_object, on_status, &dummy),
                        MOQ_ERROR_UNSUPPORTED, "moq-lite-04");
        MoqSubscribeOptions popts = moq_subscribe_options_default();
        popts.delivery = MOQ_DELIVER_POLL;
        EXPECT_NULL_MSG(moq_fetch_group(lite04, "reach/query", "t", ids[0], &popts, NULL, NULL, NULL),
                        MOQ_ERROR_UNSUPPORTED, "moq-lite-04");
        MoqTrackProperties p = properties();
        EXPECT_ERR_MSG(moq_query_track(lite04, "reach/query", "t", &p), MOQ_ERROR_UNSUPPORTED, "moq-lite-04");
        CHECK(p.priority == 0 && p.retention_ms == 0 && p.timescale == 0, "an unsupported query writes nothing");
        settle(50);
        CHECK(dummy.count == 0 && dummy.statuses == 0, "the refused fetch called nothing");
        feed_free(&dummy);
        CHECK(moq_is_connected(lite04), "the moq-lite-04 client is still connected");
    }
out:
    g_ctx = "";
    moq_client_destroy(lite04);
    moq_client_destroy(lite05);
    moq_publisher_destroy(pub);
}

/* ------------------------------------------------------------------------------------------ */
/* 4. moq_client_transport                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_transport(void) {
    printf("-- 4. moq_client_transport: quic, NOT_CONNECTED, buffer sizes\n");
    g_ctx = "transport";
    char buf[16];
    memset(buf, 'x', sizeof buf);
    EXPECT_OK(moq_client_transport(g_sub, buf, sizeof buf));
    CHECK(strcmp(buf, "quic") == 0, "transport for %s: \"%.15s\", want \"quic\"", g_url, buf);
    memset(buf, 'x', sizeof buf);
    EXPECT_OK(moq_client_transport(g_pub, buf, 5)); /* exactly "quic" + NUL */
    CHECK(memcmp(buf, "quic", 5) == 0 && buf[5] == 'x', "a 5-byte buffer holds \"quic\" and nothing more is written");

    /* Too small: BUFFER_TOO_SMALL, nothing written past the buffer. */
    memset(buf, 'x', sizeof buf);
    EXPECT_ERR(moq_client_transport(g_sub, buf, 3), MOQ_ERROR_BUFFER_TOO_SMALL);
    CHECK(buf[3] == 'x' && buf[4] == 'x', "nothing written past the 3-byte buffer");
    CHECK(memchr(buf, '\0', 3) != NULL || memcmp(buf, "xxx", 3) == 0,
          "the 3-byte buffer holds a C string or is untouched");
    EXPECT_ERR(moq_client_transport(g_sub, buf, 1), MOQ_ERROR_BUFFER_TOO_SMALL);
    EXPECT_ERR(moq_client_transport(g_sub, buf, 4), MOQ_ERROR_BUFFER_TOO_SMALL);
    /* NULL with 0: allowed, and nothing fits. NULL with a length: an argument error. */
    EXPECT_ERR(moq_client_transport(g_sub, NULL, 0), MOQ_ERROR_BUFFER_TOO_SMALL);
    EXPECT_ERR(moq_client_transport(g_sub, NULL, 16), MOQ_ERROR_INVALID_ARGUMENT);

    /* Before connect: NOT_CONNECTED. */
    MoqClientConfig config = pinned_config();
    MoqClient *fresh = moq_client_create_ex(&config);
    CHECK(fresh != NULL, "moq_client_create_ex: %s", safe(moq_last_error()));
    if (fresh) {
        memset(buf, 'x', sizeof buf);
        EXPECT_ERR(moq_client_transport(fresh, buf, sizeof buf), MOQ_ERROR_NOT_CONNECTED);
        Res r = take(moq_connect(fresh, g_url, NULL, NULL));
        CHECK(r.code == MOQ_OK, "connect: %s %s", code_name(r.code), r.message);
        memset(buf, 'x', sizeof buf);
        EXPECT_OK(moq_client_transport(fresh, buf, sizeof buf));
        CHECK(strcmp(buf, "quic") == 0, "after connect: \"%.15s\"", buf);
        EXPECT_OK(moq_disconnect(fresh));
        EXPECT_ERR(moq_client_transport(fresh, buf, sizeof buf), MOQ_ERROR_NOT_CONNECTED);
    }
    moq_client_destroy(fresh);
    EXPECT_ERR(moq_client_transport(fresh, buf, sizeof buf), MOQ_ERROR_INVALID_HANDLE); /* destroyed */
    EXPECT_ERR(moq_client_transport(NULL, buf, sizeof buf), MOQ_ERROR_INVALID_HANDLE);
    EXPECT_ERR(moq_client_transport((MoqClient *)(uintptr_t)0x99, buf, sizeof buf), MOQ_ERROR_INVALID_HANDLE);
    g_ctx = "";
}

/* ------------------------------------------------------------------------------------------ */
/* 5. Publisher memory                                                                          */
/* ------------------------------------------------------------------------------------------ */

#define CAP_BYTES 4194304u    /* 4 MiB */
#define BURST_OBJECT 262144u  /* 256 KiB */

static int client_stats(MoqClient *client, MoqStats *stats) {
    memset(stats, 0, sizeof *stats);
    stats->struct_size = (uint32_t)sizeof *stats;
    Res r = take(moq_client_stats(client, stats));
    CHECK(r.code == MOQ_OK, "moq_client_stats: %s %s", code_name(r.code), r.message);
    return r.code == MOQ_OK;
}

typedef struct {
    int ok, would_block, other, first_block;
    uint64_t buffered_max;
    char block_message[320];
    MoqResultCode block_last_code;
} Burst;

/* Publishes `count` objects of 256 KiB (one group each) as fast as possible. */
static Burst burst(MoqClient *client, MoqPublisher *pub, int count) {
    Burst b;
    memset(&b, 0, sizeof b);
    b.first_block = -1;
    uint8_t *payload = malloc(BURST_OBJECT);
    CHECK(payload != NULL, "malloc");
    if (!payload) return b;
    for (int i = 0; i < count; i++) {
        memset(payload, i & 0xff, BURST_OBJECT);
        MoqResult raw = moq_publish_data(pub, payload, BURST_OBJECT, MOQ_DELIVERY_STREAM);
        MoqResultCode last = moq_last_error_code();
        Res r = take(raw);
        if (r.code == MOQ_OK) {
            b.ok++;
        } else if (r.code == MOQ_ERROR_WOULD_BLOCK) {
            if (b.would_block++ == 0) {
                b.first_block = i;
                b.block_last_code = last;
                snprintf(b.block_message, sizeof b.block_message, "%s", r.message);
            }
        } else {
            if (b.other++ == 0) CHECK(0, "burst object %d: %s %s", i, code_name(r.code), r.message);
        }
        MoqStats stats;
        if (client_stats(client, &stats) && stats.publish_buffered_bytes > b.buffered_max)
            b.buffered_max = stats.publish_buffered_bytes;
    }
    free(payload);
    return b;
}

static MoqClient *capped_client(uint32_t overflow) {
    MoqClientConfig config = pinned_config();
    config.publish_buffer_bytes = CAP_BYTES;
    config.publish_overflow = overflow;
    return connect_with(&config);
}

/* An old-size MoqStats (up to rtt_us) is accepted, and nothing past its struct_size is written. */
static void check_old_stats(MoqClient *client, MoqPublisher *pub, uint64_t want_sent) {
    union {
        MoqStats stats;
        unsigned char bytes[sizeof(MoqStats) + 32];
    } buf;
    const size_t old_size = offsetof(MoqStats, objects_dropped_backpressure);
    memset(&buf, 0xA5, sizeof buf);
    buf.stats.struct_size = (uint32_t)old_size;
    EXPECT_OK(moq_client_stats(client, &buf.stats));
    CHECK(buf.stats.struct_size == old_size, "old-size struct_size kept (%u)", buf.stats.struct_size);
    CHECK(buf.stats.objects_sent == want_sent, "old-size client stats: objects_sent %llu, want %llu",
          (unsigned long long)buf.stats.objects_sent, (unsigned long long)want_sent);
    size_t touched = 0;
    for (size_t i = old_size; i < sizeof buf.bytes; i++)
        if (buf.bytes[i] != 0xA5) touched++;
    CHECK(touched == 0, "client stats: %zu bytes after the old struct_size (%zu) were written", touched, old_size);

    memset(&buf, 0xA5, sizeof buf);
    buf.stats.struct_size = (uint32_t)old_size;
    EXPECT_OK(moq_publisher_stats(pub, &buf.stats));
    CHECK(buf.stats.objects_sent == want_sent, "old-size publisher stats: objects_sent %llu, want %llu",
          (unsigned long long)buf.stats.objects_sent, (unsigned long long)want_sent);
    touched = 0;
    for (size_t i = old_size; i < sizeof buf.bytes; i++)
        if (buf.bytes[i] != 0xA5) touched++;
    CHECK(touched == 0, "publisher stats: %zu bytes after the old struct_size were written", touched);

    /* Sizes that are neither layout: refused, nothing written. */
    g_ctx = "stats sizes";
    memset(&buf, 0xA5, sizeof buf);
    buf.stats.struct_size = (uint32_t)old_size + 8;
    EXPECT_ERR(moq_client_stats(client, &buf.stats), MOQ_ERROR_INVALID_ARGUMENT);
    touched = 0;
    for (size_t i = sizeof buf.stats.struct_size; i < sizeof buf.bytes; i++)
        if (buf.bytes[i] != 0xA5) touched++;
    CHECK(touched == 0, "a refused struct_size: %zu bytes written", touched);
    buf.stats.struct_size = (uint32_t)sizeof(MoqStats) + 8;
    EXPECT_ERR(moq_client_stats(client, &buf.stats), MOQ_ERROR_INVALID_ARGUMENT);
    buf.stats.struct_size = 0;
    EXPECT_ERR(moq_client_stats(client, &buf.stats), MOQ_ERROR_INVALID_ARGUMENT);
    EXPECT_ERR(moq_client_stats(client, NULL), MOQ_ERROR_INVALID_ARGUMENT);
    g_ctx = "";
}

static void test_publish_memory(int quick) {
    int n = quick ? 32 : 64;
    printf("-- 5. publisher memory: %d x 256 KiB bursts into a 4 MiB publish buffer, no subscriber\n", n);
    MoqClient *err_client = NULL, *drop_client = NULL;
    MoqPublisher *err_pub = NULL, *drop_pub = NULL;

    /* MOQ_OVERFLOW_ERROR: some accepted, then WOULD_BLOCK, every refusal counted. */
    err_client = capped_client(MOQ_OVERFLOW_ERROR);
    err_pub = err_client ? publisher_with(err_client, "reach/mem-error", "t", 127, 0) : NULL;
    if (err_pub) {
        int64_t t0 = now_ms();
        Burst b = burst(err_client, err_pub, n);
        printf("   ERROR policy: %d accepted, %d WOULD_BLOCK (first at %d), buffered max %llu bytes, %lld ms\n", b.ok,
               b.would_block, b.first_block, (unsigned long long)b.buffered_max, (long long)(now_ms() - t0));
        CHECK(b.other == 0, "only OK or WOULD_BLOCK (%d others)", b.other);
        CHECK(b.ok + b.would_block == n, "%d + %d results of %d", b.ok, b.would_block, n);
        CHECK(b.ok >= 1 && b.first_block == b.ok, "some accepted, then refused: %d accepted, first refusal at %d",
              b.ok, b.first_block);
        CHECK(b.would_block > 0, "the cap was hit");
        CHECK(b.ok >= (int)(CAP_BYTES / BURST_OBJECT / 2) && b.ok <= (int)(CAP_BYTES / BURST_OBJECT),
              "about the cap's worth accepted: %d (cap %u objects)", b.ok, CAP_BYTES / BURST_OBJECT);
        CHECK(b.block_last_code == MOQ_ERROR_WOULD_BLOCK, "moq_last_error_code after WOULD_BLOCK: %s",
              code_name(b.block_last_code));
        CHECK(strstr(b.block_message, "publish_buffer_bytes") != NULL, "the refusal names the setting: %s",
              b.block_message);
        CHECK(b.buffered_max <= CAP_BYTES, "buffered at most the cap during the burst: %llu",
              (unsigned long long)b.buffered_max);
        MoqStats stats;
        if (client_stats(err_client, &stats)) {
            printf("   client stats: sent %llu, backpressure %llu, buffered %llu\n",
                   (unsigned long long)stats.objects_sent, (unsigned long long)stats.objects_dropped_backpressure,
                   (unsigned long long)stats.publish_buffered_bytes);
            CHECK(stats.objects_dropped_backpressure == (uint64_t)b.would_block,
                  "objects_dropped_backpressure %llu == WOULD_BLOCK results %d",
                  (unsigned long long)stats.objects_dropped_backpressure, b.would_block);
            CHECK(stats.publish_buffered_bytes <= CAP_BYTES, "publish_buffered_bytes %llu <= 4 MiB",
                  (unsigned long long)stats.publish_buffered_bytes);
            CHECK(stats.publish_buffered_bytes > 0, "the accepted objects are buffered (%llu bytes)",
                  (unsigned long long)stats.publish_buffered_bytes);
            CHECK(stats.objects_sent == (uint64_t)b.ok, "objects_sent %llu == accepted %d",
                  (unsigned long long)stats.objects_sent, b.ok);
        }
        MoqStats pstats;
        memset(&pstats, 0, sizeof pstats);
        pstats.struct_size = (uint32_t)sizeof pstats;
        EXPECT_OK(moq_publisher_stats(err_pub, &pstats));
        CHECK(pstats.objects_dropped_backpressure == (uint64_t)b.would_block,
              "publisher objects_dropped_backpressure %llu == %d", (unsigned long long)pstats.objects_dropped_backpressure,
              b.would_block);
        check_old_stats(err_client, err_pub, (uint64_t)b.ok);
    }

    /* MOQ_OVERFLOW_DROP_OLDEST: everything accepted, the buffer stays at the cap. */
    drop_client = capped_client(MOQ_OVERFLOW_DROP_OLDEST);
    drop_pub = drop_client ? publisher_with(drop_client, "reach/mem-drop", "t", 127, 0) : NULL;
    if (drop_pub) {
        int64_t t0 = now_ms();
        Burst b = burst(drop_client, drop_pub, n);
        printf("   DROP_OLDEST policy: %d accepted, %d WOULD_BLOCK, buffered max %llu bytes, %lld ms\n", b.ok,
               b.would_block, (unsigned long long)b.buffered_max, (long long)(now_ms() - t0));
        CHECK(b.ok == n && b.would_block == 0 && b.other == 0, "all %d accepted (%d, %d refused)", n, b.ok,
              b.would_block + b.other);
        CHECK(b.buffered_max <= CAP_BYTES, "buffered at most the cap during the burst: %llu",
              (unsigned long long)b.buffered_max);
        MoqStats stats;
        if (client_stats(drop_client, &stats)) {
            CHECK(stats.publish_buffered_bytes <= CAP_BYTES && stats.publish_buffered_bytes > 0,
                  "publish_buffered_bytes %llu in (0, 4 MiB]", (unsigned long long)stats.publish_buffered_bytes);
            CHECK(stats.objects_dropped_backpressure == 0, "no backpressure drops (%llu)",
                  (unsigned long long)stats.objects_dropped_backpressure);
            CHECK(stats.objects_sent == (uint64_t)n, "objects_sent %llu == %d", (unsigned long long)stats.objects_sent,
                  n);
        }
    }

    /* Bad settings: NULL with INVALID_ARGUMENT. */
    g_ctx = "publish buffer settings";
    {
        MoqClientConfig config = pinned_config();
        config.publish_buffer_bytes = 1000;
        EXPECT_NULL(moq_client_create_ex(&config), MOQ_ERROR_INVALID_ARGUMENT);
        config.publish_buffer_bytes = 1048575;
        EXPECT_NULL(moq_client_create_ex(&config), MOQ_ERROR_INVALID_ARGUMENT);
        config.publish_buffer_bytes = (64ull << 30) + 1;
        EXPECT_NULL(moq_client_create_ex(&config), MOQ_ERROR_INVALID_ARGUMENT);
        config.publish_buffer_bytes = CAP_BYTES;
        config.publish_overflow = 7;
        EXPECT_NULL(moq_client_create_ex(&config), MOQ_ERROR_INVALID_ARGUMENT);
        config.publish_overflow = 2;
        EXPECT_NULL(moq_client_create_ex(&config), MOQ_ERROR_INVALID_ARGUMENT);
        /* The limits themselves are fine. */
        config.publish_overflow = MOQ_OVERFLOW_ERROR;
        config.publish_buffer_bytes = 1048576;
        MoqClient *c = moq_client_create_ex(&config);
        CHECK(c != NULL, "publish_buffer_bytes 1 MiB accepted: %s", safe(moq_last_error()));
        moq_client_destroy(c);
        config.publish_buffer_bytes = 0; /* the default */
        config.publish_overflow = MOQ_OVERFLOW_DROP_OLDEST;
        c = moq_client_create_ex(&config);
        CHECK(c != NULL, "publish_buffer_bytes 0 (default) accepted: %s", safe(moq_last_error()));
        moq_client_destroy(c);
    }
    g_ctx = "";
    moq_publisher_destroy(drop_pub);
    moq_publisher_destroy(err_pub);
    moq_client_destroy(drop_client);
    moq_client_destroy(err_client);
}

/* ------------------------------------------------------------------------------------------ */

/* Runs one section and prints how long it took. */
#define SECTION(call)                                                                              \
    do {                                                                                           \
        int64_t section_start_ = now_ms();                                                         \
        call;                                                                                      \
        printf("   (%lld ms)\n", (long long)(now_ms() - section_start_));                          \
    } while (0)

int main(int argc, char **argv) {
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
            return 2;
        }
    }
    const char *scale = getenv("MOQ_TEST_TIME_SCALE");
    if (scale && atoi(scale) > 0) g_scale = atoi(scale);
    setvbuf(stdout, NULL, _IOLBF, 0);
    double t0 = now_s();

    g_relay = moq_relay_start("127.0.0.1:0");
    CHECK(g_relay != NULL, "moq_relay_start: %s", safe(moq_last_error()));
    if (!g_relay) {
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    snprintf(g_url, sizeof g_url, "%s", safe(moq_relay_url(g_relay)));
    snprintf(g_fingerprint, sizeof g_fingerprint, "%s", safe(moq_relay_fingerprint(g_relay)));
    g_pub = connected_client();
    g_sub = connected_client();
    Res r = take(moq_client_protocol_version(g_sub, g_version, sizeof g_version));
    CHECK(r.code == MOQ_OK, "moq_client_protocol_version: %s", r.message);
    int transport = 0;
    g_has_timestamps = strcmp(g_version, "moq-lite-05") == 0 || strcmp(g_version, "moq-lite-06") == 0 ||
                       (sscanf(g_version, "moq-transport-%d", &transport) == 1 && transport >= 17);
    printf("relay %s, negotiated %s (timestamps %s)\n", g_url, g_version, g_has_timestamps ? "carried" : "not carried");

    /* The priming helper really sets the codes the checks rely on. */
    prime_last_error(MOQ_ERROR_INVALID_HANDLE);
    CHECK(moq_last_error_code() == MOQ_ERROR_INVALID_ARGUMENT, "prime: %s", code_name(moq_last_error_code()));
    prime_last_error(MOQ_ERROR_INVALID_ARGUMENT);
    CHECK(moq_last_error_code() == MOQ_ERROR_INVALID_HANDLE, "prime: %s", code_name(moq_last_error_code()));

    if (g_pub && g_sub) {
        SECTION(test_fetch(quick));
        SECTION(test_groups_back());
        SECTION(test_query(quick));
        SECTION(test_transport());
        SECTION(test_publish_memory(quick));
    }
    moq_client_destroy(g_sub);
    moq_client_destroy(g_pub);
    moq_relay_stop(g_relay);

    /* moq_shutdown joins every library thread, so the leak report at exit is deterministic and
       needs no linger (see the note at the end of test_objects.c's main). Every handle was
       destroyed above; it only releases what the library still owned legitimately. */
    r = take(moq_shutdown(0));
    CHECK(r.code == MOQ_OK, "moq_shutdown: %s %s", code_name(r.code), r.message);

    printf("(%s run took %.1f s)\n", quick ? "quick" : "full", now_s() - t0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
