/*
 * test_chaos.c - two fault cases of tests/chaos.rs in a slowed process: this program runs under
 * AddressSanitizer (scripts/c-tests.sh chaos, a step of the suite), which stands in for a loaded
 * game process whose threads, the library's I/O runtime and callback thread included, run
 * several times slower.
 *
 * Build (see scripts/c-tests.sh):
 *   gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude -Itests/c \
 *       -fsanitize=address,undefined -fno-omit-frame-pointer tests/c/test_chaos.c \
 *       -Ltarget/debug -lmoq_ffi -Wl,-rpath,$PWD/target/debug -lpthread -o test_chaos
 *
 * Usage: test_chaos [--restarts N]   (default 10)
 *
 * 1. Restarts: an embedded relay (moq_relay_start on 127.0.0.1:0), stopped and started again on
 *    the port it got, N times 2 s apart, while a publisher thread publishes one 100-byte stream
 *    object per millisecond (the payload carries its index). Both clients reconnect by themselves
 *    (chaos.rs's reconnecting_client: 100..1000 ms backoff, keep-alive 1 s, idle timeout 5 s,
 *    certificate verification off since every start of the embedded relay has a new
 *    certificate). Every object moq_publish_data accepted (MOQ_OK; NOT_CONNECTED is "refused")
 *    must reach the subscriber exactly once, in order, uncorrupted, with no group lost
 *    (groups_lost == 0) and no terminal status. The flow starts once the subscription reported
 *    SUBSCRIBED (moq-lite-06 and moq-transport deliver everything published after that), so, as
 *    in chaos.rs, every accepted object is expected.
 * 2. Burst then finish: 5,000 objects (moq_publish_data: one group each) as fast as possible,
 *    then moq_publisher_finish; the publishing client kept alive (5000/5000 in order, then ENDED,
 *    nothing after it) or destroyed right after the finish (ENDED or NOT_FOUND; with ENDED every
 *    object delivered or counted in groups_lost). In this slowed process no session may be lost
 *    to an idle timeout during the burst: neither client reports RECONNECTING or counts a
 *    reconnect (same 5 s idle timeout as chaos.rs).
 *
 * The 2 s between restarts is the scenario (as in chaos.rs), not a synchronisation margin: every
 * check waits on a condition (condition variable, CLOCK_MONOTONIC deadline) with a generous
 * bound. Environment: MOQ_TEST_TIME_SCALE=N multiplies every bound.
 *
 * Ends with moq_shutdown() (see test_objects.c). Prints "N passed, M failed" as its last line;
 * exits 1 if any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "moq_ffi.h"
#include "check.h"
#include "clock.h"
#include "results.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------------------------ */
/* Time                                                                                         */
/* ------------------------------------------------------------------------------------------ */

static long g_scale = 1; /* MOQ_TEST_TIME_SCALE */

static long scaled(long ms) { return ms * g_scale; }

/* Sleeps until an absolute CLOCK_MONOTONIC time: the publisher's pace and the restart cadence. */
static void sleep_until(const struct timespec *when) {
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, when, NULL) == EINTR) {
    }
}

static const char *safe(const char *s) { return s ? s : "(null)"; }

/* ------------------------------------------------------------------------------------------ */
/* Payloads: 100 bytes, the index (8 bytes, little-endian) then a tail derived from it          */
/* ------------------------------------------------------------------------------------------ */

#define OBJECT_SIZE 100

static void make_payload(uint64_t index, uint8_t out[OBJECT_SIZE]) {
    memset(out, (int)(uint8_t)((uint8_t)index * 7u), OBJECT_SIZE);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(index >> (8 * i));
}

/* The index a payload carries; 0 in *ok when it is not exactly make_payload(index). */
static uint64_t parse_payload(const uint8_t *data, size_t len, int *ok) {
    uint64_t index = 0;
    *ok = 0;
    if (!data || len < 8) return 0;
    for (int i = 0; i < 8; i++) index |= (uint64_t)data[i] << (8 * i);
    uint8_t want[OBJECT_SIZE];
    make_payload(index, want);
    *ok = len == OBJECT_SIZE && memcmp(data, want, OBJECT_SIZE) == 0;
    return index;
}

/* ------------------------------------------------------------------------------------------ */
/* What the subscriber received                                                                 */
/* ------------------------------------------------------------------------------------------ */

#define MAX_STATUSES 64

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    uint64_t *indices; /* in delivery order */
    size_t count, cap;
    int out_of_memory;
    uint64_t corrupt;        /* payloads that are not make_payload(their index) */
    uint64_t after_terminal; /* objects delivered after a terminal status (must stay 0) */
    MoqSubscriptionStatus statuses[MAX_STATUSES];
    char terminal_message[200];
    int status_count;      /* every status, also past MAX_STATUSES */
    int subscribed;        /* SUBSCRIBED reports: 1 + resumes */
    int terminal;          /* terminal statuses (at most 1) */
    MoqSubscriptionStatus terminal_status;
    size_t count_at_terminal;
    int64_t last_object_ms; /* when the newest object arrived */
} Received;

static void received_init(Received *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mutex, NULL);
    cond_init_monotonic(&r->changed);
}

static void received_free(Received *r) {
    free(r->indices);
    pthread_cond_destroy(&r->changed);
    pthread_mutex_destroy(&r->mutex);
}

static void on_object(void *user_data, const MoqObjectInfo *info, const uint8_t *data, size_t data_len) {
    (void)info;
    Received *r = (Received *)user_data;
    int ok;
    uint64_t index = parse_payload(data, data_len, &ok);
    pthread_mutex_lock(&r->mutex);
    if (!ok) r->corrupt++;
    if (r->terminal) r->after_terminal++;
    if (r->count == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        uint64_t *grown = realloc(r->indices, cap * sizeof *grown);
        if (grown) {
            r->indices = grown;
            r->cap = cap;
        }
    }
    if (r->count < r->cap) {
        r->indices[r->count++] = index;
    } else {
        r->out_of_memory = 1;
    }
    r->last_object_ms = now_ms();
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mutex);
}

static void on_status(void *user_data, MoqSubscriptionStatus status, uint32_t code, const char *message) {
    Received *r = (Received *)user_data;
    pthread_mutex_lock(&r->mutex);
    if (r->status_count < MAX_STATUSES) r->statuses[r->status_count] = status;
    r->status_count++;
    if (status == MOQ_SUBSCRIPTION_SUBSCRIBED) {
        r->subscribed++;
    } else {
        if (!r->terminal) {
            r->terminal_status = status;
            r->count_at_terminal = r->count;
            snprintf(r->terminal_message, sizeof r->terminal_message, "code %u: %s", code, safe(message));
        }
        r->terminal++;
    }
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->mutex);
}

static size_t received_count(Received *r) {
    pthread_mutex_lock(&r->mutex);
    size_t n = r->count;
    pthread_mutex_unlock(&r->mutex);
    return n;
}

/* A condition on what was received, evaluated under its lock. */
typedef int (*Predicate)(const Received *r, uint64_t a, uint64_t b);

static int more_than(const Received *r, uint64_t n, uint64_t unused) {
    (void)unused;
    return r->count > n;
}

static int subscribed_or_terminal(const Received *r, uint64_t n, uint64_t unused) {
    (void)unused;
    return r->subscribed >= (int)n || r->terminal > 0;
}

static int any_status(const Received *r, uint64_t unused_a, uint64_t unused_b) {
    (void)unused_a;
    (void)unused_b;
    return r->status_count > 0;
}

static int has_terminal(const Received *r, uint64_t unused_a, uint64_t unused_b) {
    (void)unused_a;
    (void)unused_b;
    return r->terminal > 0;
}

/* Everything up to index `last` arrived: the newest delivered index reached it and at least
 * `count` objects were delivered (chaos.rs's check_exactly_once wait), or it can no longer come. */
static int complete(const Received *r, uint64_t last, uint64_t count) {
    return r->terminal > 0 || (r->count > 0 && r->indices[r->count - 1] >= last && r->count >= count);
}

/* Waits until `pred` holds or `timeout_ms` passed; returns whether it held. */
static int received_wait(Received *r, long timeout_ms, Predicate pred, uint64_t a, uint64_t b) {
    struct timespec deadline = deadline_in(timeout_ms);
    pthread_mutex_lock(&r->mutex);
    int held;
    while (!(held = pred(r, a, b))) {
        if (pthread_cond_timedwait(&r->changed, &r->mutex, &deadline) == ETIMEDOUT) {
            held = pred(r, a, b);
            break;
        }
    }
    pthread_mutex_unlock(&r->mutex);
    return held;
}

static void print_statuses(Received *r, char *out, size_t len) {
    size_t used = 0;
    out[0] = '\0';
    pthread_mutex_lock(&r->mutex);
    for (int i = 0; i < r->status_count && i < MAX_STATUSES && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", status_name(r->statuses[i]));
    if (r->status_count > MAX_STATUSES && used < len) snprintf(out + used, len - used, ",...");
    pthread_mutex_unlock(&r->mutex);
}

/* ------------------------------------------------------------------------------------------ */
/* Connection states of a client, with why each session was lost                                */
/* ------------------------------------------------------------------------------------------ */

#define MAX_REASONS 6

typedef struct {
    pthread_mutex_t mutex;
    const char *name;
    MoqClient *client; /* set before moq_connect: the callback reads moq_client_last_error */
    int connecting, connected, reconnecting, disconnected, failed;
    char reasons[MAX_REASONS][320]; /* distinct reasons a session was lost */
    int reason_counts[MAX_REASONS];
    int reason_kinds;
    int other_reasons; /* lost sessions whose reason did not fit in `reasons` */
} Conn;

static void conn_init(Conn *c, const char *name) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mutex, NULL);
    c->name = name;
}

static void on_state(void *user_data, MoqConnectionState state) {
    Conn *c = (Conn *)user_data;
    char why[512] = "";
    if (state == MOQ_STATE_RECONNECTING || state == MOQ_STATE_DISCONNECTED || state == MOQ_STATE_FAILED) {
        MoqResult r = moq_client_last_error(c->client, why, sizeof why);
        if (r.code != MOQ_OK) snprintf(why, sizeof why, "(moq_client_last_error: %s)", code_name(r.code));
        moq_free_str(r.message);
    }
    pthread_mutex_lock(&c->mutex);
    switch (state) {
    case MOQ_STATE_CONNECTING: c->connecting++; break;
    case MOQ_STATE_CONNECTED: c->connected++; break;
    case MOQ_STATE_RECONNECTING: c->reconnecting++; break;
    case MOQ_STATE_DISCONNECTED: c->disconnected++; break;
    case MOQ_STATE_FAILED: c->failed++; break;
    default: break;
    }
    if (state == MOQ_STATE_RECONNECTING || state == MOQ_STATE_DISCONNECTED || state == MOQ_STATE_FAILED) {
        char reason[320];
        snprintf(reason, sizeof reason, "%s: %.300s", state == MOQ_STATE_RECONNECTING ? "RECONNECTING"
                                                  : state == MOQ_STATE_DISCONNECTED ? "DISCONNECTED"
                                                                                    : "FAILED",
                 why);
        int i = 0;
        while (i < c->reason_kinds && strcmp(c->reasons[i], reason) != 0) i++;
        if (i < c->reason_kinds) {
            c->reason_counts[i]++;
        } else if (i < MAX_REASONS) {
            snprintf(c->reasons[i], sizeof c->reasons[i], "%s", reason);
            c->reason_counts[i] = 1;
            c->reason_kinds++;
        } else {
            c->other_reasons++;
        }
    }
    pthread_mutex_unlock(&c->mutex);
}

static void conn_report(Conn *c) {
    pthread_mutex_lock(&c->mutex);
    printf("   %s client: CONNECTED %d, RECONNECTING %d, DISCONNECTED %d, FAILED %d\n", c->name, c->connected,
           c->reconnecting, c->disconnected, c->failed);
    for (int i = 0; i < c->reason_kinds; i++)
        printf("     %dx %s\n", c->reason_counts[i], c->reasons[i]);
    if (c->other_reasons) printf("     %dx (other reasons)\n", c->other_reasons);
    pthread_mutex_unlock(&c->mutex);
}

static int conn_reconnecting(Conn *c) {
    pthread_mutex_lock(&c->mutex);
    int n = c->reconnecting;
    pthread_mutex_unlock(&c->mutex);
    return n;
}

/* chaos.rs's reconnecting_client: reconnects by itself (100 ms first delay, 1 s at most),
 * notices a dead relay within ~2 s, and pins `fingerprint` (NULL: verification off, for the
 * embedded relay whose certificate is new at every start). */
static MoqClient *reconnecting_client(const char *url, const char *fingerprint, Conn *conn) {
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = (uint32_t)sizeof config;
    long timeout = scaled(5000);
    config.connect_timeout_ms = (uint32_t)(timeout > 300000 ? 300000 : timeout);
    if (fingerprint)
        config.tls_fingerprint_sha256 = fingerprint;
    else
        config.tls_insecure_skip_verify = true;
    config.reconnect = true;
    config.reconnect_initial_ms = 100;
    config.reconnect_max_ms = 1000;
    config.keep_alive_ms = 1000;
    config.idle_timeout_ms = 5000;
    MoqClient *client = moq_client_create_ex(&config);
    CHECK(client != NULL, "moq_client_create_ex: %s", safe(moq_last_error()));
    if (!client) return NULL;
    conn->client = client;
    Res r = take(moq_connect(client, url, on_state, conn));
    CHECK(r.code == MOQ_OK, "%s client: moq_connect(%s): %s %s", conn->name, url, code_name(r.code), r.message);
    return client;
}

static void print_version(MoqClient *client) {
    char version[64] = "";
    Res r = take(moq_client_protocol_version(client, version, sizeof version));
    printf("   negotiated %s\n", r.code == MOQ_OK ? version : code_name(r.code));
}

static MoqStats stats_zero(void) {
    MoqStats stats;
    memset(&stats, 0, sizeof stats);
    stats.struct_size = (uint32_t)sizeof stats;
    return stats;
}

static MoqStats subscriber_stats(MoqSubscriber *sub) {
    MoqStats stats = stats_zero();
    Res r = take(moq_subscriber_stats(sub, &stats));
    CHECK(r.code == MOQ_OK, "moq_subscriber_stats: %s %s", code_name(r.code), r.message);
    return stats;
}

static MoqStats client_stats(MoqClient *client) {
    MoqStats stats = stats_zero();
    Res r = take(moq_client_stats(client, &stats));
    CHECK(r.code == MOQ_OK, "moq_client_stats: %s %s", code_name(r.code), r.message);
    return stats;
}

static MoqSubscriber *subscribe_received(MoqClient *client, const char *ns, const char *track, Received *rx,
                                         int wait_for_track) {
    MoqSubscribeOptions options = moq_subscribe_options_default();
    options.wait_for_track = (uint8_t)(wait_for_track ? 1 : 0);
    MoqSubscriber *sub = moq_subscribe_ex(client, ns, track, &options, on_object, on_status, rx);
    CHECK(sub != NULL, "moq_subscribe_ex(%s/%s): %s", ns, track, safe(moq_last_error()));
    return sub;
}

/* ------------------------------------------------------------------------------------------ */
/* The publisher thread: one object per millisecond until stopped                               */
/* ------------------------------------------------------------------------------------------ */

enum { PUBLISHED_ACCEPTED = 1, PUBLISHED_REFUSED = 2 };

typedef struct {
    MoqPublisher *publisher;
    pthread_t thread;
    pthread_mutex_t mutex;
    int stop;
    /* Owned by the thread until it is joined: */
    uint8_t *state; /* PUBLISHED_* per index */
    size_t cap;
    uint64_t published, accepted, refused;
    uint64_t last_accepted; /* the newest accepted index (valid when accepted > 0) */
    int failed;             /* a code other than OK / NOT_CONNECTED (chaos.rs panics) */
    uint64_t failed_index;
    Res failure;
    int64_t started_ms, stopped_ms;
} Flow;

static int flow_stopping(Flow *f) {
    pthread_mutex_lock(&f->mutex);
    int stop = f->stop;
    pthread_mutex_unlock(&f->mutex);
    return stop;
}

static void *flow_main(void *arg) {
    Flow *f = (Flow *)arg;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    f->started_ms = now_ms();
    uint8_t payload[OBJECT_SIZE];
    while (!flow_stopping(f)) {
        uint64_t index = f->published;
        if (index == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 65536;
            uint8_t *grown = realloc(f->state, cap);
            if (!grown) {
                f->failed = 1;
                f->failed_index = index;
                snprintf(f->failure.message, sizeof f->failure.message, "out of memory");
                break;
            }
            memset(grown + f->cap, 0, cap - f->cap);
            f->state = grown;
            f->cap = cap;
        }
        make_payload(index, payload);
        Res r = take(moq_publish_data(f->publisher, payload, sizeof payload, MOQ_DELIVERY_STREAM));
        if (r.code == MOQ_OK) {
            f->state[index] = PUBLISHED_ACCEPTED;
            f->accepted++;
            f->last_accepted = index;
        } else if (r.code == MOQ_ERROR_NOT_CONNECTED) {
            f->state[index] = PUBLISHED_REFUSED;
            f->refused++;
        } else {
            f->failed = 1;
            f->failed_index = index;
            f->failure = r;
            f->published++;
            break;
        }
        f->published++;
        /* 1 kHz: object n+1 is due n+1 ms after the start (no catching up beyond "now"). */
        struct timespec due = start;
        uint64_t ms = f->published;
        due.tv_sec += (time_t)(ms / 1000);
        due.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000L;
        }
        sleep_until(&due);
    }
    f->stopped_ms = now_ms();
    return NULL;
}

static int flow_start(Flow *f, MoqPublisher *publisher) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mutex, NULL);
    f->publisher = publisher;
    int rc = pthread_create(&f->thread, NULL, flow_main, f);
    CHECK(rc == 0, "pthread_create: %d", rc);
    return rc == 0;
}

static void flow_stop(Flow *f) {
    pthread_mutex_lock(&f->mutex);
    f->stop = 1;
    pthread_mutex_unlock(&f->mutex);
    pthread_join(f->thread, NULL);
}

static void flow_free(Flow *f) {
    free(f->state);
    pthread_mutex_destroy(&f->mutex);
}

/* ------------------------------------------------------------------------------------------ */
/* 1. Relay restarts                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Starts the embedded relay on `bind`; a port just released may take a moment to be free
 * again, so a failed bind is retried (bounded) and reported. */
static MoqRelay *relay_start_on(const char *bind, int *attempts) {
    int64_t deadline = now_ms() + scaled(10000);
    MoqRelay *relay = NULL;
    *attempts = 0;
    do {
        ++*attempts;
        relay = moq_relay_start(bind);
        if (!relay) sleep_ms(50);
    } while (!relay && now_ms() < deadline);
    return relay;
}

static void test_restarts(int restarts) {
    printf("-- 1. embedded relay restarted %d times 2 s apart under a 1 kHz stream\n", restarts);
    int64_t t0 = now_ms();
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    CHECK(relay != NULL, "moq_relay_start(127.0.0.1:0): %s", safe(moq_last_error()));
    if (!relay) return;
    char url[256], bind[64];
    snprintf(url, sizeof url, "%s", safe(moq_relay_url(relay)));
    const char *colon = strrchr(url, ':');
    int port = colon ? atoi(colon + 1) : 0;
    CHECK(port > 0, "a port in the relay URL %s", url);
    snprintf(bind, sizeof bind, "127.0.0.1:%d", port);
    printf("   relay %s (restarts bind %s)\n", url, bind);

    Conn pub_conn, sub_conn;
    conn_init(&pub_conn, "publishing");
    conn_init(&sub_conn, "subscribing");
    Received rx;
    received_init(&rx);
    Flow flow;
    int flow_running = 0;
    MoqClient *pub_client = NULL, *sub_client = NULL;
    MoqPublisher *publisher = NULL;
    MoqSubscriber *subscriber = NULL;
    int64_t resume_ms[64];
    int rounds_done = 0, max_attempts = 1;
    if (port <= 0) goto out;

    pub_client = reconnecting_client(url, NULL, &pub_conn);
    sub_client = reconnecting_client(url, NULL, &sub_conn);
    if (!pub_client || !sub_client) goto out;
    print_version(sub_client);
    MoqPublisherOptions popts = moq_publisher_options_default();
    popts.retention_ms = 30000; /* as chaos.rs (the default): serves again what a restart interrupted */
    publisher = moq_create_publisher_opts(pub_client, "chaos", "embedded", &popts);
    CHECK(publisher != NULL, "moq_create_publisher_opts: %s", safe(moq_last_error()));
    if (!publisher) goto out;
    subscriber = subscribe_received(sub_client, "chaos", "embedded", &rx, 1);
    if (!subscriber) goto out;
    int live = received_wait(&rx, scaled(10000), subscribed_or_terminal, 1, 0);
    pthread_mutex_lock(&rx.mutex);
    int early_terminal = rx.terminal;
    pthread_mutex_unlock(&rx.mutex);
    CHECK(live && !early_terminal, "SUBSCRIBED before the flow starts (%s)",
          early_terminal ? rx.terminal_message : "timed out");
    if (!live || early_terminal) goto out;

    if (!flow_start(&flow, publisher)) goto out;
    flow_running = 1;
    int flowing = received_wait(&rx, scaled(10000), more_than, 100, 0);
    CHECK(flowing, "more than 100 objects before the first restart (got %zu)", received_count(&rx));
    if (!flowing) goto out;

    struct timespec next_restart = deadline_in(2000);
    for (int round = 1; round <= restarts && round <= 64; round++) {
        sleep_until(&next_restart); /* the cadence: the scenario, not synchronisation */
        size_t before = received_count(&rx);
        int64_t stop_at = now_ms();
        moq_relay_stop(relay);
        int attempts;
        relay = relay_start_on(bind, &attempts);
        if (attempts > max_attempts) max_attempts = attempts;
        CHECK(relay != NULL, "round %d: restart on %s: %s (%d attempts)", round, bind, safe(moq_last_error()),
              attempts);
        if (!relay) goto out;
        next_restart = deadline_in(2000);
        int resumed = received_wait(&rx, scaled(30000), more_than, before + 10, 0);
        resume_ms[round - 1] = now_ms() - stop_at;
        CHECK(resumed, "round %d: delivery resumed after the restart (%zu -> %zu objects in %lld ms)", round,
              before, received_count(&rx), (long long)resume_ms[round - 1]);
        rounds_done = round;
        if (!resumed) goto out;
    }

    /* Settle: the stream runs on until 300 more objects arrived after the last restart. */
    size_t before_settle = received_count(&rx);
    CHECK(received_wait(&rx, scaled(30000), more_than, before_settle + 300, 0),
          "300 more objects after the last restart (%zu -> %zu)", before_settle, received_count(&rx));

out:
    if (flow_running) {
        flow_stop(&flow);
        CHECK(!flow.failed, "publish %llu: %s %s", (unsigned long long)flow.failed_index,
              code_name(flow.failure.code), flow.failure.message);
        int64_t wait_start = now_ms();
        int done = flow.accepted == 0 ||
                   received_wait(&rx, scaled(60000), complete, flow.last_accepted, flow.accepted);
        int64_t drained_ms = now_ms() - wait_start;

        /* Exactly once, in order, uncorrupted. */
        uint8_t *seen = calloc(flow.published ? flow.published : 1, 1);
        uint64_t duplicates = 0, out_of_order = 0, unknown = 0, refused_delivered = 0, missing = 0;
        uint64_t first_missing[20];
        int n_first_missing = 0;
        pthread_mutex_lock(&rx.mutex);
        size_t delivered = rx.count;
        for (size_t i = 0; seen && i < rx.count; i++) {
            uint64_t index = rx.indices[i];
            if (i > 0 && rx.indices[i - 1] >= index) out_of_order++;
            if (index >= flow.published) {
                unknown++;
            } else if (seen[index]) {
                duplicates++;
            } else {
                seen[index] = 1;
                if (flow.state[index] == PUBLISHED_REFUSED) refused_delivered++;
            }
        }
        uint64_t corrupt = rx.corrupt, after_terminal = rx.after_terminal;
        int subscribed = rx.subscribed, terminal = rx.terminal, oom = rx.out_of_memory;
        MoqSubscriptionStatus terminal_status = rx.terminal_status;
        char terminal_message[200];
        snprintf(terminal_message, sizeof terminal_message, "%s", rx.terminal_message);
        uint64_t first_delivered = rx.count ? rx.indices[0] : 0;
        pthread_mutex_unlock(&rx.mutex);
        for (uint64_t i = 0; seen && i < flow.published; i++) {
            if (flow.state[i] == PUBLISHED_ACCEPTED && !seen[i]) {
                if (n_first_missing < 20) first_missing[n_first_missing++] = i;
                missing++;
            }
        }
        CHECK(seen != NULL, "out of memory");
        free(seen);

        MoqStats sub_stats = subscriber_stats(subscriber);
        MoqStats pub_client_stats = client_stats(pub_client);
        MoqStats sub_client_stats = client_stats(sub_client);
        double seconds = (double)(now_ms() - t0) / 1000.0;
        printf("   %d restarts (%d bind attempt(s) at most); resume after each restart (ms):", rounds_done,
               max_attempts);
        int64_t worst = 0;
        for (int i = 0; i < rounds_done; i++) {
            printf(" %lld", (long long)resume_ms[i]);
            if (resume_ms[i] > worst) worst = resume_ms[i];
        }
        printf(" (worst %lld)\n", (long long)worst);
        printf("   published %llu in %.1f s: %llu accepted, %llu refused (NOT_CONNECTED); delivered %zu "
               "(first index %llu), %llu duplicates, %llu out of order, %llu missing, %llu corrupt, %llu "
               "refused-but-delivered, %llu unknown; drained %lld ms after the flow stopped\n",
               (unsigned long long)flow.published, (double)(flow.stopped_ms - flow.started_ms) / 1000.0,
               (unsigned long long)flow.accepted, (unsigned long long)flow.refused, delivered,
               (unsigned long long)first_delivered, (unsigned long long)duplicates,
               (unsigned long long)out_of_order, (unsigned long long)missing, (unsigned long long)corrupt,
               (unsigned long long)refused_delivered, (unsigned long long)unknown, (long long)drained_ms);
        printf("   subscription: SUBSCRIBED %d (%d resumes), groups lost %llu, repaired %llu, dropped too late "
               "%llu, events dropped %llu; reconnects: publishing client %llu, subscribing client %llu\n",
               subscribed, subscribed > 0 ? subscribed - 1 : 0, (unsigned long long)sub_stats.groups_lost,
               (unsigned long long)sub_stats.groups_repaired, (unsigned long long)sub_stats.objects_dropped_too_late,
               (unsigned long long)sub_stats.events_dropped, (unsigned long long)pub_client_stats.reconnects,
               (unsigned long long)sub_client_stats.reconnects);
        conn_report(&pub_conn);
        conn_report(&sub_conn);
        printf("   case 1 took %.1f s\n", seconds);

        char first[256] = "";
        size_t used = 0;
        for (int i = 0; i < n_first_missing && used < sizeof first; i++)
            used += (size_t)snprintf(first + used, sizeof first - used, "%s%llu", i ? "," : "",
                                     (unsigned long long)first_missing[i]);
        CHECK(done, "every accepted object arrived within %ld ms of the flow stopping (%zu of %llu delivered; "
                    "newest accepted %llu)",
              scaled(60000), delivered, (unsigned long long)flow.accepted, (unsigned long long)flow.last_accepted);
        CHECK(missing == 0, "%llu accepted objects never delivered; first: %s", (unsigned long long)missing, first);
        CHECK(duplicates == 0, "%llu objects delivered twice", (unsigned long long)duplicates);
        CHECK(out_of_order == 0, "%llu objects out of order", (unsigned long long)out_of_order);
        CHECK(corrupt == 0 && unknown == 0 && !oom, "%llu corrupted payloads, %llu unknown indices%s",
              (unsigned long long)corrupt, (unsigned long long)unknown, oom ? ", out of memory" : "");
        CHECK(refused_delivered == 0, "%llu objects refused with NOT_CONNECTED were delivered",
              (unsigned long long)refused_delivered);
        CHECK(terminal == 0 && after_terminal == 0, "no terminal status (got %s, %s; %llu objects after it)",
              terminal ? status_name(terminal_status) : "none", terminal_message, (unsigned long long)after_terminal);
        CHECK(sub_stats.groups_lost == 0, "subscriber groups_lost %llu", (unsigned long long)sub_stats.groups_lost);
        CHECK(flow.accepted > 0 && delivered > 0, "something was accepted (%llu) and delivered (%zu)",
              (unsigned long long)flow.accepted, delivered);
        flow_free(&flow);
    }
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    moq_relay_stop(relay);
    received_free(&rx);
    pthread_mutex_destroy(&pub_conn.mutex);
    pthread_mutex_destroy(&sub_conn.mutex);
}

/* ------------------------------------------------------------------------------------------ */
/* 2. Burst then finish                                                                         */
/* ------------------------------------------------------------------------------------------ */

static void burst_then_finish(uint64_t objects, int destroy) {
    const char *what = destroy ? "publishing client destroyed right after" : "publishing client kept alive";
    printf("-- 2. burst of %llu objects then moq_publisher_finish, %s\n", (unsigned long long)objects, what);
    int64_t t0 = now_ms();
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    CHECK(relay != NULL, "moq_relay_start(127.0.0.1:0): %s", safe(moq_last_error()));
    if (!relay) return;
    char url[256], fingerprint[256];
    snprintf(url, sizeof url, "%s", safe(moq_relay_url(relay)));
    snprintf(fingerprint, sizeof fingerprint, "%s", safe(moq_relay_fingerprint(relay)));

    Conn pub_conn, sub_conn;
    conn_init(&pub_conn, "publishing");
    conn_init(&sub_conn, "subscribing");
    Received rx;
    received_init(&rx);
    MoqClient *pub_client = reconnecting_client(url, fingerprint, &pub_conn);
    MoqClient *sub_client = reconnecting_client(url, fingerprint, &sub_conn);
    MoqPublisher *publisher = NULL;
    MoqSubscriber *subscriber = NULL;
    if (!pub_client || !sub_client) goto out;
    print_version(sub_client);
    publisher = moq_create_publisher(pub_client, "chaos", "finish");
    CHECK(publisher != NULL, "moq_create_publisher: %s", safe(moq_last_error()));
    if (!publisher) goto out;
    subscriber = subscribe_received(sub_client, "chaos", "finish", &rx, 0);
    if (!subscriber) goto out;
    int live = received_wait(&rx, scaled(10000), any_status, 0, 0);
    pthread_mutex_lock(&rx.mutex);
    int first_subscribed = rx.subscribed, early_terminal = rx.terminal, early_statuses = rx.status_count;
    MoqSubscriptionStatus early_status = rx.terminal_status;
    pthread_mutex_unlock(&rx.mutex);
    CHECK(live && first_subscribed == 1 && !early_terminal, "SUBSCRIBED first (%d statuses, terminal %s %s)",
          early_statuses, early_terminal ? status_name(early_status) : "none", rx.terminal_message);
    if (!live || early_terminal) goto out;

    int64_t burst_start = now_ms();
    uint8_t payload[OBJECT_SIZE];
    uint64_t ok = 0;
    Res failure = {MOQ_OK, 0, ""};
    uint64_t failed_at = 0;
    for (uint64_t index = 0; index < objects; index++) {
        make_payload(index, payload);
        Res r = take(moq_publish_data(publisher, payload, sizeof payload, MOQ_DELIVERY_STREAM));
        if (r.code == MOQ_OK) {
            ok++;
        } else if (failure.code == MOQ_OK) {
            failure = r;
            failed_at = index;
        }
    }
    Res fin = take(moq_publisher_finish(publisher));
    int64_t burst_ms = now_ms() - burst_start;
    CHECK(ok == objects, "every publish accepted: %llu of %llu (first failure at %llu: %s %s)",
          (unsigned long long)ok, (unsigned long long)objects, (unsigned long long)failed_at,
          code_name(failure.code), failure.message);
    CHECK(fin.code == MOQ_OK, "moq_publisher_finish: %s %s", code_name(fin.code), fin.message);
    int pub_reconnecting = conn_reconnecting(&pub_conn);
    MoqStats pub_stats = client_stats(pub_client);
    if (destroy) {
        moq_publisher_destroy(publisher);
        publisher = NULL;
        moq_client_destroy(pub_client);
        pub_client = NULL;
    }
    int ended = received_wait(&rx, scaled(60000), has_terminal, 0, 0);
    int64_t end_ms = now_ms() - burst_start;

    MoqStats stats = subscriber_stats(subscriber);
    MoqStats sub_client_stats = client_stats(sub_client);
    if (!destroy) {
        pub_reconnecting = conn_reconnecting(&pub_conn);
        pub_stats = client_stats(pub_client);
    }
    pthread_mutex_lock(&rx.mutex);
    size_t delivered = rx.count, at_terminal = rx.count_at_terminal;
    uint64_t out_of_order = 0, not_sequence = 0;
    for (size_t i = 0; i < rx.count; i++) {
        if (i > 0 && rx.indices[i - 1] >= rx.indices[i]) out_of_order++;
        if (rx.indices[i] != i) not_sequence++;
    }
    uint64_t corrupt = rx.corrupt, after_terminal = rx.after_terminal;
    int terminals = rx.terminal, oom = rx.out_of_memory;
    MoqSubscriptionStatus last = rx.terminal_status;
    char terminal_message[200];
    snprintf(terminal_message, sizeof terminal_message, "%s", rx.terminal_message);
    int64_t last_object_ms = rx.last_object_ms ? rx.last_object_ms - burst_start : -1;
    unsigned long long first_index = rx.count ? (unsigned long long)rx.indices[0] : 0;
    unsigned long long last_index = rx.count ? (unsigned long long)rx.indices[rx.count - 1] : 0;
    pthread_mutex_unlock(&rx.mutex);
    char statuses[512];
    print_statuses(&rx, statuses, sizeof statuses);
    printf("   published %llu in %lld ms (finish %s); %zu delivered (indices %llu..%llu, the last at %lld ms), "
           "terminal after %lld ms: "
           "[%s] %s; groups lost %llu, repaired %llu; reconnects: publishing client %llu, subscribing client "
           "%llu\n",
           (unsigned long long)ok, (long long)burst_ms, code_name(fin.code), delivered, first_index, last_index,
           (long long)last_object_ms,
           (long long)end_ms, statuses, ended ? terminal_message : "(none)", (unsigned long long)stats.groups_lost,
           (unsigned long long)stats.groups_repaired, (unsigned long long)pub_stats.reconnects,
           (unsigned long long)sub_client_stats.reconnects);
    conn_report(&pub_conn);
    conn_report(&sub_conn);

    CHECK(ended && terminals == 1, "%s: one terminal status within %ld ms (%d; statuses [%s], %zu delivered)", what,
          scaled(60000), terminals, statuses, delivered);
    CHECK(after_terminal == 0 && at_terminal == delivered,
          "%s: nothing after the terminal status (%llu objects after it; %zu delivered before it, %zu in all)", what,
          (unsigned long long)after_terminal, at_terminal, delivered);
    CHECK(out_of_order == 0, "%s: in order, once (%llu out of order)", what, (unsigned long long)out_of_order);
    CHECK(corrupt == 0 && !oom, "%s: %llu corrupted payloads%s", what, (unsigned long long)corrupt,
          oom ? ", out of memory" : "");
    if (ended) {
        if (destroy) {
            CHECK(last == MOQ_SUBSCRIPTION_ENDED || last == MOQ_SUBSCRIPTION_NOT_FOUND,
                  "%s: ENDED, or NOT_FOUND when the finish never reached the relay; got %s (%s)", what,
                  status_name(last), terminal_message);
        } else {
            CHECK(last == MOQ_SUBSCRIPTION_ENDED, "%s: ENDED; got %s (%s)", what, status_name(last),
                  terminal_message);
            CHECK(delivered == objects && not_sequence == 0,
                  "%s: with the publisher alive everything arrives: %zu of %llu (%llu not at their place)", what,
                  delivered, (unsigned long long)objects, (unsigned long long)not_sequence);
        }
        /* Each object is a group of its own. A group whose stream the relay reset after its one
           object arrived is delivered and counted lost too (its end never came: nothing says it
           had no more), so the count covers at least every object not delivered, and at most
           every group. */
        if (last == MOQ_SUBSCRIPTION_ENDED)
            CHECK(delivered + stats.groups_lost >= objects && stats.groups_lost <= objects,
                  "%s: every object delivered or counted lost before ENDED: %zu delivered + %llu lost < %llu", what,
                  delivered, (unsigned long long)stats.groups_lost, (unsigned long long)objects);
    }
    /* The slowed process keeps its sessions: no idle timeout (nor any other loss) during the burst. */
    CHECK(conn_reconnecting(&sub_conn) == 0 && sub_client_stats.reconnects == 0,
          "%s: the subscribing client kept its session (RECONNECTING %d, reconnects %llu)", what,
          conn_reconnecting(&sub_conn), (unsigned long long)sub_client_stats.reconnects);
    CHECK(pub_reconnecting == 0 && pub_stats.reconnects == 0,
          "%s: the publishing client kept its session (RECONNECTING %d, reconnects %llu)", what, pub_reconnecting,
          (unsigned long long)pub_stats.reconnects);
    printf("   case took %.1f s\n", (double)(now_ms() - t0) / 1000.0);

out:
    moq_subscriber_destroy(subscriber);
    moq_client_destroy(sub_client);
    moq_publisher_destroy(publisher);
    moq_client_destroy(pub_client);
    moq_relay_stop(relay);
    received_free(&rx);
    pthread_mutex_destroy(&pub_conn.mutex);
    pthread_mutex_destroy(&sub_conn.mutex);
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    int restarts = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--restarts") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0 &&
            atoi(argv[i + 1]) <= 64) {
            restarts = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--restarts N (1..64, default 10)]\n", argv[0]);
            return 2;
        }
    }
    const char *scale = getenv("MOQ_TEST_TIME_SCALE");
    if (scale && atoi(scale) > 0) g_scale = atoi(scale) > 60 ? 60 : atoi(scale);
    setvbuf(stdout, NULL, _IOLBF, 0);
    double t0 = now_s();
    printf("%s (time scale %ld)\n", moq_version(), g_scale);

    test_restarts(restarts);
    burst_then_finish(5000, 0);
    burst_then_finish(5000, 1);

    /* moq_shutdown joins every library thread, so LeakSanitizer's report at exit is
       deterministic (see the end of test_objects.c's main). */
    Res r = take(moq_shutdown(0));
    CHECK(r.code == MOQ_OK, "moq_shutdown: %s %s", code_name(r.code), r.message);
    printf("(run took %.1f s)\n", now_s() - t0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
