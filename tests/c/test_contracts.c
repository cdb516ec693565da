/*
 * test_contracts.c - checks the C contract of moq-ffi (include/moq_ffi.h) from C.
 *
 * Build (see scripts/c-tests.sh):
 *   gcc -std=c99 -Wall -Wextra -Iinclude tests/c/test_contracts.c \
 *       -Ltarget/debug -lmoq_ffi -Wl,-rpath,$PWD/target/debug -lpthread -o test_contracts
 *
 * Usage: test_contracts [--quick]
 *   --quick  hostile inputs + a 20-object round trip + destroy-from-callback (for valgrind).
 *
 * Environment: MOQ_TEST_TIME_SCALE=N multiplies every timeout/wait (e.g. 10 under valgrind);
 *              MOQ_TEST_LINGER_MS=N sleeps N ms before exiting (see main).
 *
 * Prints "N passed, M failed" as its last line; exits 1 if any check failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "moq_ffi.h"
#include "names.h"
#include "clock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* Assertion helper                                                                             */
/* ------------------------------------------------------------------------------------------ */

static int g_passed;
static int g_failed;
static int g_scale = 1; /* multiplies timeouts (valgrind is ~20-50x slower) */

static void check_at(int ok, const char *file, int line, const char *expr, const char *fmt, ...) {
    if (ok) {
        g_passed++;
        return;
    }
    g_failed++;
    fprintf(stderr, "FAIL %s:%d: %s", file, line, expr);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(" -- ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    fflush(stderr);
}

/* CHECK(cond, printf-style context...) */
#define CHECK(cond, ...) check_at(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

static const char *safe(const char *s) { return s ? s : "(null)"; }

/* Case-insensitive substring search. */
static int contains_ci(const char *haystack, const char *needle) {
    if (!haystack || !needle) return 0;
    size_t n = strlen(needle);
    for (const char *p = haystack; *p; p++) {
        size_t i = 0;
        while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Time                                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------------ */
/* Error-contract helpers                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* A failing MoqResult: expected code, a message, moq_last_error set to the same text. Frees it. */
static void expect_fail_at(MoqResult r, MoqResultCode want, const char *what, const char *file, int line) {
    const char *last = moq_last_error();
    check_at(r.code == want, file, line, "result code", "%s: want %s, got %s (%s)", what, code_name(want),
             code_name(r.code), safe(r.message));
    check_at(r.message != NULL, file, line, "result.message != NULL", "%s", what);
    check_at(last != NULL, file, line, "moq_last_error() != NULL", "%s", what);
    if (r.message && last)
        check_at(strcmp(r.message, last) == 0, file, line, "message == moq_last_error()", "%s: '%s' vs '%s'",
                 what, r.message, last);
    moq_free_str(r.message);
}
#define EXPECT_FAIL(r, code, what) expect_fail_at((r), (code), (what), __FILE__, __LINE__)

/* A successful MoqResult: MOQ_OK and no message. */
static void expect_ok_at(MoqResult r, const char *what, const char *file, int line) {
    check_at(r.code == MOQ_OK, file, line, "result code == MOQ_OK", "%s: got %s (%s)", what, code_name(r.code),
             safe(r.message));
    check_at(r.message == NULL, file, line, "result.message == NULL on success", "%s", what);
    moq_free_str(r.message);
}
#define EXPECT_OK(r, what) expect_ok_at((r), (what), __FILE__, __LINE__)

/*
 * Functions that fail with NULL/false/void only report through moq_last_error(). To prove that
 * the call under test set it (and did not just leave an older message), we first "prime" the
 * thread's last error with a distinctive failure (an invalid UTF-8 URL given to a live client),
 * then check that afterwards moq_last_error() holds a different text.
 */
static MoqClient *g_prime_client;
static char g_prime_text[512];

static void prime_last_error(void) {
    MoqResult r = moq_connect(g_prime_client, "\xff\xfe", NULL, NULL);
    const char *last = moq_last_error();
    snprintf(g_prime_text, sizeof g_prime_text, "%s", safe(last));
    moq_free_str(r.message);
}

/* After prime_last_error() + a failing call: last error is set, changed and mentions `needle`. */
static void expect_last_error_at(const char *needle, const char *what, const char *file, int line) {
    const char *last = moq_last_error();
    check_at(last != NULL, file, line, "moq_last_error() != NULL", "%s", what);
    check_at(last && strcmp(last, g_prime_text) != 0, file, line, "moq_last_error() was updated", "%s: still '%s'",
             what, safe(last));
    if (needle)
        check_at(contains_ci(last, needle), file, line, "moq_last_error() mentions", "%s: '%s' lacks '%s'", what,
                 safe(last), needle);
}
#define EXPECT_LAST_ERROR(needle, what) expect_last_error_at((needle), (what), __FILE__, __LINE__)

/* ------------------------------------------------------------------------------------------ */
/* Relay and client helpers                                                                     */
/* ------------------------------------------------------------------------------------------ */

static MoqRelay *g_relay;
static char g_url[256];
static char g_fingerprint[256];

static MoqClientConfig pinned_config(uint32_t timeout_ms) {
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = (uint32_t)sizeof(MoqClientConfig);
    config.connect_timeout_ms = timeout_ms;
    config.tls_fingerprint_sha256 = g_fingerprint;
    return config;
}

static uint32_t base_timeout_ms(void) {
    uint32_t t = 5000u * (uint32_t)g_scale;
    return t > 300000u ? 300000u : t;
}

static MoqClient *connected_client(MoqConnectionCallback cb, void *user_data) {
    MoqClientConfig config = pinned_config(base_timeout_ms());
    MoqClient *client = moq_client_create_ex(&config);
    CHECK(client != NULL, "moq_client_create_ex(pinned): %s", safe(moq_last_error()));
    if (!client) return NULL;
    MoqResult r = moq_connect(client, g_url, cb, user_data);
    CHECK(r.code == MOQ_OK, "moq_connect(%s): %s %s", g_url, code_name(r.code), safe(r.message));
    moq_free_str(r.message);
    return client;
}

/* ------------------------------------------------------------------------------------------ */
/* Inbox: what a data callback received                                                         */
/* ------------------------------------------------------------------------------------------ */

#define INBOX_CAP 4096

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    size_t count;
    uint8_t *data[INBOX_CAP];
    size_t len[INBOX_CAP];
    int overflow;
    int calls_after_destroy; /* destroy-from-callback: calls after the self-destroy */
    int destroyed;           /* set once the callback destroyed its subscriber */
    size_t destroy_at;       /* 0 = never; else destroy own subscriber at this count */
    MoqSubscriber *self;     /* the subscriber this inbox belongs to */
} Inbox;

static void inbox_init(Inbox *in) {
    memset(in, 0, sizeof *in);
    pthread_mutex_init(&in->mutex, NULL);
    cond_init_monotonic(&in->cond);
}

static void inbox_free(Inbox *in) {
    for (size_t i = 0; i < in->count && i < INBOX_CAP; i++) free(in->data[i]);
    pthread_cond_destroy(&in->cond);
    pthread_mutex_destroy(&in->mutex);
}

static void inbox_callback(void *user_data, const uint8_t *data, size_t data_len) {
    Inbox *in = (Inbox *)user_data;
    MoqSubscriber *destroy = NULL;
    pthread_mutex_lock(&in->mutex);
    if (in->destroyed) in->calls_after_destroy++;
    if (in->count < INBOX_CAP) {
        uint8_t *copy = malloc(data_len ? data_len : 1);
        if (copy && data_len) memcpy(copy, data, data_len);
        in->data[in->count] = copy;
        in->len[in->count] = data_len;
    } else {
        in->overflow = 1;
    }
    in->count++;
    if (in->destroy_at && in->count == in->destroy_at && !in->destroyed) {
        destroy = in->self;
        in->destroyed = 1;
    }
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->mutex);
    if (destroy) moq_subscriber_destroy(destroy); /* our own subscriber, from its callback */
}

/* Waits (bounded) until `want` objects arrived; returns the count. */
static size_t inbox_wait(Inbox *in, size_t want, long timeout_ms) {
    struct timespec deadline = deadline_in(timeout_ms);
    pthread_mutex_lock(&in->mutex);
    while (in->count < want) {
        if (pthread_cond_timedwait(&in->cond, &in->mutex, &deadline) == ETIMEDOUT) break;
    }
    size_t count = in->count;
    pthread_mutex_unlock(&in->mutex);
    return count;
}

static size_t inbox_count(Inbox *in) {
    pthread_mutex_lock(&in->mutex);
    size_t count = in->count;
    pthread_mutex_unlock(&in->mutex);
    return count;
}

/* ------------------------------------------------------------------------------------------ */
/* Connection states                                                                            */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int count;
    MoqConnectionState seen[64];
} States;

static void states_init(States *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mutex, NULL);
    cond_init_monotonic(&s->cond);
}

static void states_free(States *s) {
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mutex);
}

static void states_callback(void *user_data, MoqConnectionState state) {
    States *s = (States *)user_data;
    pthread_mutex_lock(&s->mutex);
    if (s->count < 64) s->seen[s->count] = state;
    s->count++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mutex);
}

/* Waits (bounded) until `state` was reported; returns its index or -1. */
static int states_wait(States *s, MoqConnectionState state, long timeout_ms) {
    struct timespec deadline = deadline_in(timeout_ms);
    int found = -1;
    pthread_mutex_lock(&s->mutex);
    for (;;) {
        for (int i = 0; i < s->count && i < 64; i++)
            if (s->seen[i] == state) {
                found = i;
                break;
            }
        if (found >= 0) break;
        if (pthread_cond_timedwait(&s->cond, &s->mutex, &deadline) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&s->mutex);
    return found;
}

/* ------------------------------------------------------------------------------------------ */
/* Library-wide functions                                                                       */
/* ------------------------------------------------------------------------------------------ */

static void test_library(void) {
    printf("-- library: version, init, free_str\n");
    const char *version = moq_version();
    CHECK(version != NULL, "moq_version() returned NULL");
    CHECK(version && strncmp(version, "moq-ffi", 7) == 0, "version '%s'", safe(version));
    CHECK(moq_version() == version, "moq_version() is a static string");
    CHECK(moq_init(), "moq_init() #1: %s", safe(moq_last_error()));
    CHECK(moq_init(), "moq_init() #2: %s", safe(moq_last_error()));

    /* moq_free_str: NULL and pointers the library never issued are ignored. */
    static const char literal[] = "not issued by moq-ffi";
    char stack_buf[32] = "on the stack";
    char *heap = malloc(16);
    strcpy(heap, "heap");
    moq_free_str(NULL);
    moq_free_str(literal);
    moq_free_str(stack_buf);
    moq_free_str(heap);
    moq_free_str((const char *)(uintptr_t)0x1234);
    moq_free_str(version); /* static library string, not a MoqResult message */
    CHECK(strcmp(literal, "not issued by moq-ffi") == 0, "literal untouched");
    CHECK(strcmp(stack_buf, "on the stack") == 0, "stack buffer untouched");
    CHECK(strcmp(heap, "heap") == 0, "heap buffer untouched (and still ours to free)");
    free(heap);
    CHECK(moq_version() && strncmp(moq_version(), "moq-ffi", 7) == 0, "version still valid after free_str");

    /* A real message freed twice: the second free is ignored. */
    MoqResult r = moq_disconnect(NULL);
    CHECK(r.message != NULL, "moq_disconnect(NULL) message");
    const char *msg = r.message;
    moq_free_str(msg);
    moq_free_str(msg); /* already freed: ignored */
}

/* ------------------------------------------------------------------------------------------ */
/* Hostile inputs                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void noop_data(void *user_data, const uint8_t *data, size_t data_len) {
    (void)user_data;
    (void)data;
    (void)data_len;
}

static void test_hostile(void) {
    printf("-- hostile inputs\n");
    char too_long[MOQ_MAX_NAME_LEN + 2];
    memset(too_long, 'a', MOQ_MAX_NAME_LEN + 1);
    too_long[MOQ_MAX_NAME_LEN + 1] = '\0';
    char max_len[MOQ_MAX_NAME_LEN + 1];
    memset(max_len, 'b', MOQ_MAX_NAME_LEN);
    max_len[MOQ_MAX_NAME_LEN] = '\0';
    const char *bad_utf8 = "\xff\xfe";
    MoqClient *const made_up = (MoqClient *)(uintptr_t)0x1234;
    MoqClient *const made_up2 = (MoqClient *)(uintptr_t)0xdeadbeef0ULL;

    /* An idle (never connected) client for priming moq_last_error. */
    g_prime_client = moq_client_create();
    CHECK(g_prime_client != NULL, "moq_client_create: %s", safe(moq_last_error()));
    prime_last_error();
    CHECK(moq_last_error() != NULL, "last error set after a failing moq_connect");
    CHECK(contains_ci(g_prime_text, "url"), "priming message names the url: '%s'", g_prime_text);

    /* Live objects to take handles from. */
    MoqClient *conn = connected_client(NULL, NULL);
    /* Subscriptions use a second client: a client's own announcements are not routed back to it. */
    MoqClient *conn2 = connected_client(NULL, NULL);
    MoqPublisher *pub = conn ? moq_create_publisher(conn, "hostile", "live") : NULL;
    CHECK(pub != NULL, "moq_create_publisher(hostile/live): %s", safe(moq_last_error()));
    Inbox live_inbox;
    inbox_init(&live_inbox);
    MoqSubscriber *sub = conn2 ? moq_subscribe(conn2, "hostile", "live", inbox_callback, &live_inbox) : NULL;
    CHECK(sub != NULL, "moq_subscribe(hostile/live): %s", safe(moq_last_error()));

    /* Stale handles of each type. */
    MoqClient *stale_client = moq_client_create();
    CHECK(stale_client != NULL, "moq_client_create");
    moq_client_destroy(stale_client);
    MoqPublisher *stale_pub = conn ? moq_create_publisher(conn, "hostile", "stale") : NULL;
    CHECK(stale_pub != NULL, "publisher for stale test: %s", safe(moq_last_error()));
    moq_publisher_destroy(stale_pub);
    Inbox stale_inbox;
    inbox_init(&stale_inbox);
    MoqPublisher *stale_sub_pub = conn ? moq_create_publisher(conn, "hostile", "stale-sub") : NULL;
    MoqSubscriber *stale_sub =
        conn2 ? moq_subscribe(conn2, "hostile", "stale-sub", inbox_callback, &stale_inbox) : NULL;
    CHECK(stale_sub != NULL, "subscriber for stale test: %s", safe(moq_last_error()));
    moq_subscriber_destroy(stale_sub);
    moq_publisher_destroy(stale_sub_pub);
    MoqRelay *stale_relay = moq_relay_start("127.0.0.1:0");
    CHECK(stale_relay != NULL, "second relay: %s", safe(moq_last_error()));
    moq_relay_stop(stale_relay);

    /* ---------------- invalid client handles, every client function ---------------- */
    struct {
        MoqClient *h;
        const char *what;
        const char *needle;
    } bad_clients[] = {
        {NULL, "NULL client", "null"},
        {stale_client, "stale client", "client"},
        {(MoqClient *)pub, "publisher cast to client", "client"},
        {(MoqClient *)sub, "subscriber cast to client", "client"},
        {(MoqClient *)g_relay, "relay cast to client", "client"},
        {made_up, "client 0x1234", "client"},
        {made_up2, "client 0xdeadbeef0", "client"},
    };
    for (size_t i = 0; i < sizeof bad_clients / sizeof bad_clients[0]; i++) {
        MoqClient *h = bad_clients[i].h;
        const char *what = bad_clients[i].what;
        char label[128];

        snprintf(label, sizeof label, "moq_connect(%s)", what);
        EXPECT_FAIL(moq_connect(h, g_url, NULL, NULL), MOQ_ERROR_INVALID_HANDLE, label);
        snprintf(label, sizeof label, "moq_disconnect(%s)", what);
        EXPECT_FAIL(moq_disconnect(h), MOQ_ERROR_INVALID_HANDLE, label);
        snprintf(label, sizeof label, "moq_announce_namespace(%s)", what);
        EXPECT_FAIL(moq_announce_namespace(h, "ns"), MOQ_ERROR_INVALID_HANDLE, label);

        snprintf(label, sizeof label, "moq_is_connected(%s)", what);
        prime_last_error();
        CHECK(!moq_is_connected(h), "%s", label);
        EXPECT_LAST_ERROR(bad_clients[i].needle, label);

        snprintf(label, sizeof label, "moq_create_publisher(%s)", what);
        prime_last_error();
        CHECK(moq_create_publisher(h, "ns", "t") == NULL, "%s", label);
        EXPECT_LAST_ERROR(bad_clients[i].needle, label);

        snprintf(label, sizeof label, "moq_create_publisher_ex(%s)", what);
        prime_last_error();
        CHECK(moq_create_publisher_ex(h, "ns", "t", MOQ_DELIVERY_DATAGRAM) == NULL, "%s", label);
        EXPECT_LAST_ERROR(bad_clients[i].needle, label);

        snprintf(label, sizeof label, "moq_subscribe(%s)", what);
        prime_last_error();
        CHECK(moq_subscribe(h, "ns", "t", noop_data, NULL) == NULL, "%s", label);
        EXPECT_LAST_ERROR(bad_clients[i].needle, label);

        snprintf(label, sizeof label, "moq_client_destroy(%s)", what);
        prime_last_error();
        moq_client_destroy(h); /* ignored, recorded */
        EXPECT_LAST_ERROR(bad_clients[i].needle, label);
    }
    /* The objects whose handles were misused are unaffected. */
    CHECK(conn && moq_is_connected(conn), "connected client survived misuse of its siblings' handles");
    CHECK(sub && moq_is_subscribed(sub), "subscriber survived being passed as a client: %s", safe(moq_last_error()));

    /* Double destroy of a client. */
    MoqClient *twice = moq_client_create();
    CHECK(twice != NULL, "moq_client_create");
    moq_client_destroy(twice);
    prime_last_error();
    moq_client_destroy(twice);
    EXPECT_LAST_ERROR("client", "double moq_client_destroy");

    /* ---------------- invalid publisher handles ---------------- */
    struct {
        MoqPublisher *h;
        const char *what;
    } bad_pubs[] = {
        {NULL, "NULL publisher"},
        {stale_pub, "stale publisher"},
        {(MoqPublisher *)conn, "client cast to publisher"},
        {(MoqPublisher *)sub, "subscriber cast to publisher"},
        {(MoqPublisher *)g_relay, "relay cast to publisher"},
        {(MoqPublisher *)made_up, "publisher 0x1234"},
        {(MoqPublisher *)made_up2, "publisher 0xdeadbeef0"},
    };
    static const uint8_t bytes4[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < sizeof bad_pubs / sizeof bad_pubs[0]; i++) {
        char label[128];
        snprintf(label, sizeof label, "moq_publish_data(%s, stream)", bad_pubs[i].what);
        EXPECT_FAIL(moq_publish_data(bad_pubs[i].h, bytes4, 4, MOQ_DELIVERY_STREAM), MOQ_ERROR_INVALID_HANDLE, label);
        snprintf(label, sizeof label, "moq_publish_data(%s, datagram)", bad_pubs[i].what);
        EXPECT_FAIL(moq_publish_data(bad_pubs[i].h, bytes4, 4, MOQ_DELIVERY_DATAGRAM), MOQ_ERROR_INVALID_HANDLE,
                    label);
        snprintf(label, sizeof label, "moq_publisher_destroy(%s)", bad_pubs[i].what);
        prime_last_error();
        moq_publisher_destroy(bad_pubs[i].h);
        EXPECT_LAST_ERROR(i == 0 ? "null" : "publisher", label);
    }
    prime_last_error();
    moq_publisher_destroy(stale_pub); /* double destroy */
    EXPECT_LAST_ERROR("publisher", "double moq_publisher_destroy");

    /* ---------------- invalid subscriber handles ---------------- */
    struct {
        MoqSubscriber *h;
        const char *what;
    } bad_subs[] = {
        {NULL, "NULL subscriber"},
        {stale_sub, "stale subscriber"},
        {(MoqSubscriber *)conn, "client cast to subscriber"},
        {(MoqSubscriber *)pub, "publisher cast to subscriber"},
        {(MoqSubscriber *)g_relay, "relay cast to subscriber"},
        {(MoqSubscriber *)made_up, "subscriber 0x1234"},
        {(MoqSubscriber *)made_up2, "subscriber 0xdeadbeef0"},
    };
    for (size_t i = 0; i < sizeof bad_subs / sizeof bad_subs[0]; i++) {
        char label[128];
        const char *needle = i == 0 ? "null" : "subscriber";
        snprintf(label, sizeof label, "moq_unsubscribe(%s)", bad_subs[i].what);
        EXPECT_FAIL(moq_unsubscribe(bad_subs[i].h), MOQ_ERROR_INVALID_HANDLE, label);
        snprintf(label, sizeof label, "moq_is_subscribed(%s)", bad_subs[i].what);
        prime_last_error();
        CHECK(!moq_is_subscribed(bad_subs[i].h), "%s", label);
        EXPECT_LAST_ERROR(needle, label);
        snprintf(label, sizeof label, "moq_subscriber_destroy(%s)", bad_subs[i].what);
        prime_last_error();
        moq_subscriber_destroy(bad_subs[i].h);
        EXPECT_LAST_ERROR(needle, label);
    }
    prime_last_error();
    moq_subscriber_destroy(stale_sub); /* double destroy */
    EXPECT_LAST_ERROR("subscriber", "double moq_subscriber_destroy");

    /* ---------------- invalid relay handles ---------------- */
    struct {
        MoqRelay *h;
        const char *what;
    } bad_relays[] = {
        {NULL, "NULL relay"},
        {stale_relay, "stale relay"},
        {(MoqRelay *)conn, "client cast to relay"},
        {(MoqRelay *)pub, "publisher cast to relay"},
        {(MoqRelay *)sub, "subscriber cast to relay"},
        {(MoqRelay *)made_up2, "relay 0xdeadbeef0"},
        {(MoqRelay *)(uintptr_t)0x7ffffffff4ULL, "relay 0x7ffffffff4 (relay tag, never issued)"},
    };
    for (size_t i = 0; i < sizeof bad_relays / sizeof bad_relays[0]; i++) {
        char label[128];
        const char *needle = i == 0 ? "null" : "relay";
        snprintf(label, sizeof label, "moq_relay_url(%s)", bad_relays[i].what);
        prime_last_error();
        CHECK(moq_relay_url(bad_relays[i].h) == NULL, "%s", label);
        EXPECT_LAST_ERROR(needle, label);
        snprintf(label, sizeof label, "moq_relay_fingerprint(%s)", bad_relays[i].what);
        prime_last_error();
        CHECK(moq_relay_fingerprint(bad_relays[i].h) == NULL, "%s", label);
        EXPECT_LAST_ERROR(needle, label);
        snprintf(label, sizeof label, "moq_relay_stop(%s)", bad_relays[i].what);
        prime_last_error();
        moq_relay_stop(bad_relays[i].h);
        EXPECT_LAST_ERROR(needle, label);
    }
    prime_last_error();
    moq_relay_stop(stale_relay); /* double stop */
    EXPECT_LAST_ERROR("relay", "double moq_relay_stop");
    CHECK(moq_relay_url(g_relay) != NULL && strcmp(moq_relay_url(g_relay), g_url) == 0,
          "the real relay is unaffected by hostile handles");

    /* ---------------- moq_relay_start arguments ---------------- */
    struct {
        const char *addr;
        const char *what;
    } bad_addrs[] = {
        {NULL, "NULL bind_addr"},
        {bad_utf8, "invalid UTF-8 bind_addr"},
        {"", "empty bind_addr"},
        {"not an address", "malformed bind_addr"},
        {"127.0.0.1:99999", "port out of range"},
        {too_long, "over-long bind_addr"},
    };
    for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        char label[128];
        snprintf(label, sizeof label, "moq_relay_start(%s)", bad_addrs[i].what);
        prime_last_error();
        MoqRelay *r = moq_relay_start(bad_addrs[i].addr);
        CHECK(r == NULL, "%s", label);
        EXPECT_LAST_ERROR(NULL, label);
        if (r) moq_relay_stop(r);
    }
    /* The port the embedded relay holds is taken: bind fails (UDP, so only same address). */
    {
        const char *port = strrchr(g_url, ':');
        char addr[64];
        snprintf(addr, sizeof addr, "127.0.0.1%s", port ? port : ":1");
        prime_last_error();
        MoqRelay *r = moq_relay_start(addr);
        CHECK(r == NULL, "moq_relay_start(%s) on a port in use", addr);
        EXPECT_LAST_ERROR(NULL, "moq_relay_start(port in use)");
        if (r) moq_relay_stop(r);
    }

    /* ---------------- moq_client_create_ex configs ---------------- */
    {
        prime_last_error();
        CHECK(moq_client_create_ex(NULL) == NULL, "moq_client_create_ex(NULL)");
        EXPECT_LAST_ERROR("config", "moq_client_create_ex(NULL)");

        struct {
            MoqClientConfig c;
            const char *what;
        } bad[14];
        int n = 0;
        for (int k = 0; k < 14; k++) memset(&bad[k].c, 0, sizeof(MoqClientConfig));
        bad[n].c.struct_size = 0, bad[n++].what = "struct_size 0";
        bad[n].c.struct_size = 3, bad[n++].what = "struct_size 3";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig) + 8, bad[n++].what = "struct_size too large";
        bad[n].c.struct_size = 0xffffffffu, bad[n++].what = "struct_size 0xffffffff";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.tls_fingerprint_sha256 = "zz", bad[n++].what = "fingerprint 'zz'";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.tls_fingerprint_sha256 = "", bad[n++].what = "empty fingerprint";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.tls_fingerprint_sha256 =
            "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        bad[n++].what = "fingerprint with a non-hex digit";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.tls_fingerprint_sha256 = bad_utf8, bad[n++].what = "invalid UTF-8 fingerprint";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.tls_root_ca_pem = "not a pem", bad[n++].what = "invalid PEM";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.tls_fingerprint_sha256 = g_fingerprint;
        bad[n].c.tls_insecure_skip_verify = true, bad[n++].what = "fingerprint + insecure (conflict)";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.connect_timeout_ms = 300001, bad[n++].what = "timeout 300001 ms";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.max_streams = 15, bad[n++].what = "max_streams 15";
        bad[n].c.struct_size = (uint32_t)sizeof(MoqClientConfig);
        bad[n].c.max_streams = 100001, bad[n++].what = "max_streams 100001";
        for (int k = 0; k < n; k++) {
            char label[128];
            snprintf(label, sizeof label, "moq_client_create_ex(%s)", bad[k].what);
            prime_last_error();
            MoqClient *c = moq_client_create_ex(&bad[k].c);
            CHECK(c == NULL, "%s", label);
            EXPECT_LAST_ERROR(NULL, label);
            if (c) moq_client_destroy(c);
        }
        /* The fingerprint with ':' separators and upper case is accepted (documented). */
        char colon_fp[256];
        size_t o = 0;
        for (size_t k = 0; g_fingerprint[k] && o + 3 < sizeof colon_fp; k++) {
            if (k && k % 2 == 0) colon_fp[o++] = ':';
            colon_fp[o++] = (char)toupper((unsigned char)g_fingerprint[k]);
        }
        colon_fp[o] = '\0';
        MoqClientConfig ok = pinned_config(0);
        ok.tls_fingerprint_sha256 = colon_fp;
        MoqClient *c = moq_client_create_ex(&ok);
        CHECK(c != NULL, "fingerprint with ':' separators accepted: %s", safe(moq_last_error()));
        moq_client_destroy(c);
        /* The layout before max_streams (an older header) is accepted with its default, and
           the range's ends are accepted. */
        MoqClientConfig older = pinned_config(0);
        older.struct_size = (uint32_t)offsetof(MoqClientConfig, max_streams);
        older.max_streams = 1; /* past the older struct: never read */
        c = moq_client_create_ex(&older);
        CHECK(c != NULL, "struct_size of the layout before max_streams accepted: %s", safe(moq_last_error()));
        moq_client_destroy(c);
        const uint64_t ends[] = {16, 100000};
        for (size_t k = 0; k < 2; k++) {
            MoqClientConfig streams = pinned_config(0);
            streams.max_streams = ends[k];
            c = moq_client_create_ex(&streams);
            CHECK(c != NULL, "max_streams %llu accepted: %s", (unsigned long long)ends[k], safe(moq_last_error()));
            moq_client_destroy(c);
        }
    }

    /* ---------------- moq_connect arguments (live, idle client) ---------------- */
    {
        MoqClient *idle = g_prime_client;
        char long_url[MOQ_MAX_URL_LEN + 32];
        strcpy(long_url, "https://localhost:1/");
        size_t l = strlen(long_url);
        memset(long_url + l, 'x', MOQ_MAX_URL_LEN + 1 - l);
        long_url[MOQ_MAX_URL_LEN + 1] = '\0';
        struct {
            const char *url;
            const char *what;
        } bad_urls[] = {
            {NULL, "NULL url"},
            {bad_utf8, "invalid UTF-8 url"},
            {"", "empty url"},
            {"not a url", "malformed url"},
            {"ftp://localhost:1/", "unsupported scheme"},
            {"https://", "no host"},
            {long_url, "over-long url"},
        };
        for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
            char label[128];
            snprintf(label, sizeof label, "moq_connect(%s)", bad_urls[i].what);
            EXPECT_FAIL(moq_connect(idle, bad_urls[i].url, NULL, NULL), MOQ_ERROR_INVALID_ARGUMENT, label);
        }
        CHECK(!moq_is_connected(idle), "idle client not connected");
        EXPECT_OK(moq_disconnect(idle), "moq_disconnect(never connected) is idempotent");
        EXPECT_FAIL(moq_announce_namespace(idle, "ns"), MOQ_ERROR_NOT_CONNECTED, "announce on idle client");
        prime_last_error();
        CHECK(moq_create_publisher(idle, "ns", "t") == NULL, "publisher on idle client");
        EXPECT_LAST_ERROR(NULL, "moq_create_publisher(idle client)");
        prime_last_error();
        CHECK(moq_subscribe(idle, "ns", "t", noop_data, NULL) == NULL, "subscribe on idle client");
        EXPECT_LAST_ERROR(NULL, "moq_subscribe(idle client)");
        if (conn) EXPECT_FAIL(moq_connect(conn, g_url, NULL, NULL), MOQ_ERROR_INVALID_STATE, "connect while connected");
    }

    /* ---------------- names: announce, create_publisher(_ex), subscribe ---------------- */
    if (conn) {
        struct {
            const char *ns;
            const char *track;
            const char *what;
        } bad_names[] = {
            {NULL, "t", "NULL namespace"},
            {"ns", NULL, "NULL track"},
            {bad_utf8, "t", "invalid UTF-8 namespace"},
            {"ns", bad_utf8, "invalid UTF-8 track"},
            {too_long, "t", "over-long namespace"},
            {"ns", too_long, "over-long track"},
            {"", "t", "empty namespace"},
            {"ns", "", "empty track"},
            {"ns\n", "t", "control character in namespace"},
            {"ns", "t\x01", "control character in track"},
        };
        for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
            char label[160];
            if (bad_names[i].track && strcmp(bad_names[i].track, "t") == 0) {
                snprintf(label, sizeof label, "moq_announce_namespace(%s)", bad_names[i].what);
                EXPECT_FAIL(moq_announce_namespace(conn, bad_names[i].ns), MOQ_ERROR_INVALID_ARGUMENT, label);
            }
            snprintf(label, sizeof label, "moq_create_publisher(%s)", bad_names[i].what);
            prime_last_error();
            MoqPublisher *p = moq_create_publisher(conn, bad_names[i].ns, bad_names[i].track);
            CHECK(p == NULL, "%s", label);
            EXPECT_LAST_ERROR(NULL, label);
            moq_publisher_destroy(p);
            snprintf(label, sizeof label, "moq_create_publisher_ex(%s)", bad_names[i].what);
            prime_last_error();
            p = moq_create_publisher_ex(conn, bad_names[i].ns, bad_names[i].track, MOQ_DELIVERY_DATAGRAM);
            CHECK(p == NULL, "%s", label);
            EXPECT_LAST_ERROR(NULL, label);
            moq_publisher_destroy(p);
            snprintf(label, sizeof label, "moq_subscribe(%s)", bad_names[i].what);
            prime_last_error();
            MoqSubscriber *s = moq_subscribe(conn, bad_names[i].ns, bad_names[i].track, noop_data, NULL);
            CHECK(s == NULL, "%s", label);
            EXPECT_LAST_ERROR(NULL, label);
            moq_subscriber_destroy(s);
        }
        /* Invalid delivery modes. */
        uint32_t modes[] = {2, 7, 0xffffffffu};
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
            char label[128];
            snprintf(label, sizeof label, "moq_create_publisher_ex(mode %u)", modes[i]);
            prime_last_error();
            MoqPublisher *p = moq_create_publisher_ex(conn, "hostile", "mode", modes[i]);
            CHECK(p == NULL, "%s", label);
            EXPECT_LAST_ERROR("mode", label);
            moq_publisher_destroy(p);
            if (pub) {
                snprintf(label, sizeof label, "moq_publish_data(mode %u)", modes[i]);
                EXPECT_FAIL(moq_publish_data(pub, bytes4, 4, modes[i]), MOQ_ERROR_INVALID_ARGUMENT, label);
            }
        }
        /* NULL callback. */
        prime_last_error();
        CHECK(moq_subscribe(conn, "hostile", "live", NULL, NULL) == NULL, "moq_subscribe(NULL callback)");
        EXPECT_LAST_ERROR("callback", "moq_subscribe(NULL callback)");
        /* A second publisher for the same track. */
        prime_last_error();
        MoqPublisher *dup = moq_create_publisher(conn, "hostile", "live");
        CHECK(dup == NULL, "second publisher for hostile/live");
        EXPECT_LAST_ERROR(NULL, "moq_create_publisher(duplicate track)");
        moq_publisher_destroy(dup);
        /* Exactly MOQ_MAX_NAME_LEN bytes is accepted. */
        MoqPublisher *longest = moq_create_publisher(conn, "hostile", max_len);
        CHECK(longest != NULL, "track name of MOQ_MAX_NAME_LEN bytes accepted: %s", safe(moq_last_error()));
        moq_publisher_destroy(longest);
        EXPECT_OK(moq_announce_namespace(conn, "hostile-announced"), "moq_announce_namespace(valid)");
        EXPECT_OK(moq_announce_namespace(conn, "hostile-announced"), "moq_announce_namespace is idempotent");
    }

    /* ---------------- moq_publish_data arguments ---------------- */
    if (pub) {
        EXPECT_FAIL(moq_publish_data(pub, NULL, 4, MOQ_DELIVERY_STREAM), MOQ_ERROR_INVALID_ARGUMENT,
                    "NULL data, len 4, stream");
        EXPECT_FAIL(moq_publish_data(pub, NULL, 1, MOQ_DELIVERY_DATAGRAM), MOQ_ERROR_INVALID_ARGUMENT,
                    "NULL data, len 1, datagram");
        EXPECT_FAIL(moq_publish_data(pub, NULL, SIZE_MAX, MOQ_DELIVERY_STREAM), MOQ_ERROR_INVALID_ARGUMENT,
                    "NULL data, len SIZE_MAX");
        uint8_t *big = calloc(1, MOQ_MAX_DATAGRAM_SIZE + 1);
        EXPECT_FAIL(moq_publish_data(pub, big, MOQ_MAX_DATAGRAM_SIZE + 1, MOQ_DELIVERY_DATAGRAM),
                    MOQ_ERROR_INVALID_ARGUMENT, "datagram of MOQ_MAX_DATAGRAM_SIZE+1 bytes");
        free(big);
        uint8_t *huge = calloc(1, (size_t)MOQ_MAX_OBJECT_SIZE + 1);
        if (huge) {
            EXPECT_FAIL(moq_publish_data(pub, huge, (size_t)MOQ_MAX_OBJECT_SIZE + 1, MOQ_DELIVERY_STREAM),
                        MOQ_ERROR_INVALID_ARGUMENT, "stream object of MOQ_MAX_OBJECT_SIZE+1 bytes");
            free(huge);
        }
        /* NULL data with zero length is a valid empty object. */
        EXPECT_OK(moq_publish_data(pub, NULL, 0, MOQ_DELIVERY_STREAM), "NULL data, len 0, stream");
        size_t got = inbox_wait(&live_inbox, 1, 5000L * g_scale);
        CHECK(got == 1, "the empty object arrived (got %zu)", got);
        if (got >= 1) CHECK(live_inbox.len[0] == 0, "it is empty (len %zu)", live_inbox.len[0]);
    }

    /* ---------------- unsubscribe is idempotent; handle stays valid ---------------- */
    if (sub) {
        EXPECT_OK(moq_unsubscribe(sub), "moq_unsubscribe");
        CHECK(!moq_is_subscribed(sub), "not subscribed after moq_unsubscribe");
        EXPECT_OK(moq_unsubscribe(sub), "moq_unsubscribe again (idempotent)");
        size_t before = inbox_count(&live_inbox);
        EXPECT_OK(moq_publish_data(pub, bytes4, 4, MOQ_DELIVERY_STREAM), "publish after unsubscribe");
        sleep_ms(200L * g_scale);
        CHECK(inbox_count(&live_inbox) == before, "no callback after moq_unsubscribe");
        moq_subscriber_destroy(sub);
        prime_last_error();
        moq_subscriber_destroy(sub);
        EXPECT_LAST_ERROR("subscriber", "destroy after unsubscribe+destroy");
    }

    /* ---------------- publishers/subscribers after their client is destroyed ---------------- */
    if (conn2 && pub) {
        Inbox orphan_inbox;
        inbox_init(&orphan_inbox);
        MoqSubscriber *orphan = moq_subscribe(conn2, "hostile", "live", inbox_callback, &orphan_inbox);
        CHECK(orphan != NULL, "second subscription to hostile/live: %s", safe(moq_last_error()));
        CHECK(orphan && moq_is_subscribed(orphan), "subscribed");
        moq_client_destroy(conn2);
        conn2 = NULL;
        CHECK(!moq_is_subscribed(orphan), "not subscribed once its client is destroyed");
        MoqResult r = moq_unsubscribe(orphan);
        CHECK(r.code != MOQ_ERROR_INVALID_HANDLE, "subscriber handle outlives its client (got %s)",
              code_name(r.code));
        moq_free_str(r.message);
        size_t before = inbox_count(&orphan_inbox);
        EXPECT_OK(moq_publish_data(pub, bytes4, 4, MOQ_DELIVERY_STREAM), "publish after subscriber's client died");
        sleep_ms(200L * g_scale);
        CHECK(inbox_count(&orphan_inbox) == before, "no callback after the subscriber's client was destroyed");
        moq_subscriber_destroy(orphan);
        inbox_free(&orphan_inbox);
    }
    if (conn && pub) {
        moq_client_destroy(conn);
        MoqResult r = moq_publish_data(pub, bytes4, 4, MOQ_DELIVERY_STREAM);
        CHECK(r.code != MOQ_OK, "publish after the client was destroyed fails (got %s)", code_name(r.code));
        CHECK(r.code != MOQ_ERROR_INVALID_HANDLE, "...but the publisher handle stays valid (got %s)",
              code_name(r.code));
        CHECK(r.message != NULL, "...with a message");
        moq_free_str(r.message);
        moq_publisher_destroy(pub);
        prime_last_error();
        moq_client_destroy(conn);
        EXPECT_LAST_ERROR("client", "client destroyed twice");
    } else {
        moq_publisher_destroy(pub);
        moq_client_destroy(conn);
    }

    moq_client_destroy(conn2);
    moq_client_destroy(g_prime_client);
    g_prime_client = NULL;
    inbox_free(&live_inbox);
    inbox_free(&stale_inbox);
}

/* ------------------------------------------------------------------------------------------ */
/* Round trips                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* Object i of a round trip: "obj" + index + a pattern, i % 37 bytes long pattern; one empty. */
static size_t make_object(unsigned i, size_t empty_index, uint8_t *buf, size_t cap) {
    if (i == empty_index) return 0;
    int n = snprintf((char *)buf, cap, "obj-%05u:", i);
    size_t len = (size_t)n;
    for (unsigned k = 0; k < (i * 7) % 61 && len < cap; k++) buf[len++] = (uint8_t)(i + k);
    return len;
}

static void test_stream_round_trip(unsigned count, int with_states) {
    printf("-- stream round trip: %u objects%s\n", count, with_states ? ", connection states" : "");
    States states;
    states_init(&states);
    MoqClient *pub_client = connected_client(with_states ? states_callback : NULL, &states);
    MoqClient *sub_client = connected_client(NULL, NULL);
    if (!pub_client || !sub_client) goto out_clients;

    if (with_states) {
        int connected = states_wait(&states, MOQ_STATE_CONNECTED, 5000L * g_scale);
        CHECK(connected >= 0, "CONNECTED reported");
        pthread_mutex_lock(&states.mutex);
        CHECK(states.count >= 2 && states.seen[0] == MOQ_STATE_CONNECTING, "first state CONNECTING (got %d)",
              states.count ? (int)states.seen[0] : -1);
        CHECK(states.count >= 2 && states.seen[1] == MOQ_STATE_CONNECTED, "then CONNECTED (got %d)",
              states.count > 1 ? (int)states.seen[1] : -1);
        pthread_mutex_unlock(&states.mutex);
        CHECK(moq_is_connected(pub_client), "moq_is_connected after connect");
    }

    MoqPublisher *pub = moq_create_publisher(pub_client, "roundtrip", "stream");
    CHECK(pub != NULL, "moq_create_publisher: %s", safe(moq_last_error()));
    Inbox inbox;
    inbox_init(&inbox);
    MoqSubscriber *sub = moq_subscribe(sub_client, "roundtrip", "stream", inbox_callback, &inbox);
    CHECK(sub != NULL, "moq_subscribe: %s", safe(moq_last_error()));
    if (!pub || !sub) goto out;
    CHECK(moq_is_subscribed(sub), "moq_is_subscribed after subscribe");

    const size_t empty_index = count / 3;
    uint8_t buf[128];
    int publish_failures = 0;
    for (unsigned i = 0; i < count; i++) {
        size_t len = make_object(i, empty_index, buf, sizeof buf);
        MoqResult r = moq_publish_data(pub, len ? buf : NULL, len, MOQ_DELIVERY_STREAM);
        if (r.code != MOQ_OK) {
            if (publish_failures++ < 3)
                fprintf(stderr, "publish %u: %s %s\n", i, code_name(r.code), safe(r.message));
        }
        moq_free_str(r.message);
    }
    CHECK(publish_failures == 0, "%d of %u publishes failed", publish_failures, count);
    size_t got = inbox_wait(&inbox, count, 15000L * g_scale);
    sleep_ms(100); /* catch duplicates */
    got = inbox_count(&inbox);
    CHECK(got == count, "received %zu of %u objects", got, count);
    int mismatches = 0;
    for (unsigned i = 0; i < count && i < got && i < INBOX_CAP; i++) {
        size_t len = make_object(i, empty_index, buf, sizeof buf);
        if (inbox.len[i] != len || (len && memcmp(inbox.data[i], buf, len) != 0)) {
            if (mismatches++ < 3)
                fprintf(stderr, "object %u differs: want %zu bytes, got %zu bytes '%.*s'\n", i, len, inbox.len[i],
                        (int)(inbox.len[i] < 16 ? inbox.len[i] : 16), (const char *)inbox.data[i]);
        }
    }
    CHECK(mismatches == 0, "%d objects out of order or corrupted", mismatches);
    CHECK(got > empty_index && inbox.len[empty_index] == 0, "the zero-length object arrived empty");

    /* Destroying the publisher ends the track: the subscriber sees the end. */
    moq_publisher_destroy(pub);
    pub = NULL;
    int64_t until = now_ms() + 5000L * g_scale;
    while (moq_is_subscribed(sub) && now_ms() < until) sleep_ms(20);
    CHECK(!moq_is_subscribed(sub), "subscriber sees the end of the track after moq_publisher_destroy");
    CHECK(moq_last_error() != NULL, "...and moq_last_error says why");

    if (with_states) {
        EXPECT_OK(moq_disconnect(pub_client), "moq_disconnect");
        CHECK(states_wait(&states, MOQ_STATE_DISCONNECTED, 5000L * g_scale) >= 0, "DISCONNECTED reported");
        CHECK(!moq_is_connected(pub_client), "not connected after moq_disconnect");
        EXPECT_OK(moq_disconnect(pub_client), "moq_disconnect again (idempotent)");
        EXPECT_FAIL(moq_announce_namespace(pub_client, "after-disconnect"), MOQ_ERROR_NOT_CONNECTED,
                    "announce after disconnect");
        /* Reconnect the same client. */
        EXPECT_OK(moq_connect(pub_client, g_url, states_callback, &states), "reconnect after disconnect");
        CHECK(moq_is_connected(pub_client), "connected again");
    }

out:
    moq_subscriber_destroy(sub);
    moq_publisher_destroy(pub);
    inbox_free(&inbox);
out_clients:
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    states_free(&states);
}

static void test_datagram_round_trip(void) {
    printf("-- datagram round trip\n");
    MoqClient *pub_client = connected_client(NULL, NULL);
    MoqClient *sub_client = connected_client(NULL, NULL);
    MoqPublisher *pub = NULL;
    MoqSubscriber *sub = NULL;
    Inbox inbox;
    inbox_init(&inbox);
    if (!pub_client || !sub_client) goto out;
    pub = moq_create_publisher_ex(pub_client, "roundtrip", "datagrams", MOQ_DELIVERY_DATAGRAM);
    CHECK(pub != NULL, "moq_create_publisher_ex(datagram): %s", safe(moq_last_error()));
    sub = moq_subscribe(sub_client, "roundtrip", "datagrams", inbox_callback, &inbox);
    CHECK(sub != NULL, "moq_subscribe(datagrams): %s", safe(moq_last_error()));
    if (!pub || !sub) goto out;
    int sent = 0;
    uint8_t buf[MOQ_MAX_DATAGRAM_SIZE];
    for (int i = 0; i < 50; i++) {
        int n = snprintf((char *)buf, sizeof buf, "datagram-%02d", i);
        MoqResult r = moq_publish_data(pub, buf, (size_t)n, MOQ_DELIVERY_DATAGRAM);
        if (r.code == MOQ_OK)
            sent++;
        else if (sent == 0 && i == 0)
            fprintf(stderr, "datagram publish: %s %s\n", code_name(r.code), safe(r.message));
        moq_free_str(r.message);
        sleep_ms(10);
    }
    CHECK(sent == 50, "all 50 datagram publishes accepted (%d)", sent);
    /* A datagram of exactly MOQ_MAX_DATAGRAM_SIZE bytes is accepted. */
    memset(buf, 'd', sizeof buf);
    EXPECT_OK(moq_publish_data(pub, buf, sizeof buf, MOQ_DELIVERY_DATAGRAM), "datagram of MOQ_MAX_DATAGRAM_SIZE");
    size_t got = inbox_wait(&inbox, 1, 3000L * g_scale);
    sleep_ms(200);
    got = inbox_count(&inbox);
    printf("   %zu of 51 datagrams arrived\n", got);
    CHECK(got >= 1, "at least one datagram arrived (got %zu)", got);
    int bad = 0;
    pthread_mutex_lock(&inbox.mutex);
    for (size_t i = 0; i < inbox.count && i < INBOX_CAP; i++) {
        int ok = (inbox.len[i] == 11 && memcmp(inbox.data[i], "datagram-", 9) == 0) ||
                 (inbox.len[i] == MOQ_MAX_DATAGRAM_SIZE && inbox.data[i][0] == 'd' &&
                  inbox.data[i][MOQ_MAX_DATAGRAM_SIZE - 1] == 'd');
        if (!ok) bad++;
    }
    pthread_mutex_unlock(&inbox.mutex);
    CHECK(bad == 0, "%d datagrams had unexpected contents", bad);
out:
    moq_subscriber_destroy(sub);
    moq_publisher_destroy(pub);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    inbox_free(&inbox);
}

/* ------------------------------------------------------------------------------------------ */
/* Destroy from callback                                                                        */
/* ------------------------------------------------------------------------------------------ */

static void test_destroy_from_callback(void) {
    printf("-- destroy from callback\n");
    MoqClient *pub_client = connected_client(NULL, NULL);
    MoqClient *sub_client = connected_client(NULL, NULL);
    MoqPublisher *pub = NULL;
    Inbox inbox;
    inbox_init(&inbox);
    if (!pub_client || !sub_client) goto out;
    pub = moq_create_publisher(pub_client, "selfdestroy", "track");
    CHECK(pub != NULL, "moq_create_publisher: %s", safe(moq_last_error()));
    pthread_mutex_lock(&inbox.mutex); /* the callback reads `self` under the mutex */
    inbox.destroy_at = 3;
    MoqSubscriber *sub = moq_subscribe(sub_client, "selfdestroy", "track", inbox_callback, &inbox);
    inbox.self = sub;
    pthread_mutex_unlock(&inbox.mutex);
    CHECK(sub != NULL, "moq_subscribe: %s", safe(moq_last_error()));
    if (!pub || !sub) goto out;

    uint8_t b = 0;
    for (int i = 0; i < 10; i++, b++) {
        MoqResult r = moq_publish_data(pub, &b, 1, MOQ_DELIVERY_STREAM);
        CHECK(r.code == MOQ_OK, "publish %d: %s", i, safe(r.message));
        moq_free_str(r.message);
    }
    inbox_wait(&inbox, 3, 5000L * g_scale);
    pthread_mutex_lock(&inbox.mutex);
    int destroyed = inbox.destroyed;
    pthread_mutex_unlock(&inbox.mutex);
    CHECK(destroyed, "the callback destroyed its subscriber");
    size_t count = inbox_count(&inbox);
    CHECK(count == 3, "exactly 3 objects delivered before the self-destroy (got %zu)", count);

    for (int i = 0; i < 10; i++, b++) {
        MoqResult r = moq_publish_data(pub, &b, 1, MOQ_DELIVERY_STREAM);
        CHECK(r.code == MOQ_OK, "publish after self-destroy %d: %s", i, safe(r.message));
        moq_free_str(r.message);
    }
    sleep_ms(300L * g_scale);
    CHECK(inbox_count(&inbox) == count, "no callback after the self-destroy (%zu -> %zu)", count,
          inbox_count(&inbox));
    pthread_mutex_lock(&inbox.mutex);
    CHECK(inbox.calls_after_destroy == 0, "calls after destroy: %d", inbox.calls_after_destroy);
    pthread_mutex_unlock(&inbox.mutex);
    /* The handle is gone: it is now stale. */
    prime_last_error();
    CHECK(!moq_is_subscribed(sub), "self-destroyed subscriber is stale");
    EXPECT_LAST_ERROR("subscriber", "moq_is_subscribed(self-destroyed)");
    moq_subscriber_destroy(sub); /* double destroy: ignored */
out:
    moq_publisher_destroy(pub);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    inbox_free(&inbox);
}

/* A data callback that destroys the whole client of its subscriber. */
typedef struct {
    Inbox inbox;
    MoqClient *client;
} ClientKiller;

static void client_killer_callback(void *user_data, const uint8_t *data, size_t data_len) {
    ClientKiller *k = (ClientKiller *)user_data;
    inbox_callback(&k->inbox, data, data_len);
    pthread_mutex_lock(&k->inbox.mutex);
    MoqClient *victim = k->inbox.count == 2 ? k->client : NULL;
    if (victim) k->inbox.destroyed = 1;
    pthread_mutex_unlock(&k->inbox.mutex);
    if (victim) moq_client_destroy(victim); /* returns at once from inside a callback */
}

static void test_client_destroy_from_callback(void) {
    printf("-- client destroy from a data callback\n");
    MoqClient *pub_client = connected_client(NULL, NULL);
    ClientKiller killer;
    inbox_init(&killer.inbox);
    killer.client = connected_client(NULL, NULL);
    MoqPublisher *pub = pub_client ? moq_create_publisher(pub_client, "clientkill", "track") : NULL;
    CHECK(pub != NULL, "moq_create_publisher: %s", safe(moq_last_error()));
    MoqSubscriber *sub =
        killer.client ? moq_subscribe(killer.client, "clientkill", "track", client_killer_callback, &killer) : NULL;
    CHECK(sub != NULL, "moq_subscribe: %s", safe(moq_last_error()));
    if (pub && sub) {
        uint8_t b = 0;
        for (int i = 0; i < 5; i++, b++) {
            MoqResult r = moq_publish_data(pub, &b, 1, MOQ_DELIVERY_STREAM);
            moq_free_str(r.message);
        }
        inbox_wait(&killer.inbox, 2, 5000L * g_scale);
        sleep_ms(100);
        size_t count = inbox_count(&killer.inbox);
        CHECK(count == 2, "callbacks stopped once the client was destroyed (got %zu)", count);
        for (int i = 0; i < 5; i++, b++) {
            MoqResult r = moq_publish_data(pub, &b, 1, MOQ_DELIVERY_STREAM);
            moq_free_str(r.message);
        }
        sleep_ms(300L * g_scale);
        CHECK(inbox_count(&killer.inbox) == count, "no callback after the client destroy (%zu -> %zu)", count,
              inbox_count(&killer.inbox));
        prime_last_error();
        CHECK(!moq_is_connected(killer.client), "destroyed client is stale");
        EXPECT_LAST_ERROR("client", "moq_is_connected(client destroyed in callback)");
        CHECK(!moq_is_subscribed(sub), "its subscriber reports not subscribed");
        MoqResult r = moq_unsubscribe(sub);
        CHECK(r.code != MOQ_ERROR_INVALID_HANDLE, "its subscriber handle is still valid (got %s)", code_name(r.code));
        moq_free_str(r.message);
    } else {
        moq_client_destroy(killer.client);
    }
    moq_subscriber_destroy(sub);
    moq_publisher_destroy(pub);
    moq_client_destroy(pub_client);
    inbox_free(&killer.inbox);
}

static void test_not_found(void) {
    printf("-- subscribing to a missing track / namespace\n");
    MoqClientConfig config = pinned_config(1000u * (uint32_t)g_scale);
    MoqClient *pub_client = moq_client_create_ex(&config);
    MoqClient *sub_client = moq_client_create_ex(&config);
    CHECK(pub_client && sub_client, "clients: %s", safe(moq_last_error()));
    EXPECT_OK(moq_connect(pub_client, g_url, NULL, NULL), "connect publisher client");
    EXPECT_OK(moq_connect(sub_client, g_url, NULL, NULL), "connect subscriber client");
    MoqPublisher *pub = moq_create_publisher(pub_client, "notfound", "exists");
    CHECK(pub != NULL, "moq_create_publisher: %s", safe(moq_last_error()));
    /* Let the announce reach the relay (subscribe below must not be the one waiting for it). */
    Inbox inbox;
    inbox_init(&inbox);
    MoqSubscriber *probe = moq_subscribe(sub_client, "notfound", "exists", inbox_callback, &inbox);
    CHECK(probe != NULL, "subscribe to the existing track: %s", safe(moq_last_error()));
    moq_subscriber_destroy(probe);

    prime_last_error();
    int64_t t0 = now_ms();
    MoqSubscriber *sub = moq_subscribe(sub_client, "notfound", "missing", noop_data, NULL);
    int64_t took = now_ms() - t0;
    CHECK(sub == NULL, "missing track in an announced namespace");
    EXPECT_LAST_ERROR("not found", "moq_subscribe(missing track)");
    CHECK(took < 1000L * g_scale, "missing track reported without waiting for the timeout (%lld ms)",
          (long long)took);
    moq_subscriber_destroy(sub);

    prime_last_error();
    t0 = now_ms();
    sub = moq_subscribe(sub_client, "never-announced", "x", noop_data, NULL);
    took = now_ms() - t0;
    CHECK(sub == NULL, "namespace nobody announced");
    EXPECT_LAST_ERROR(NULL, "moq_subscribe(missing namespace)");
    CHECK(took >= 900L * g_scale && took <= 2500L * g_scale, "bounded by connect_timeout_ms=1000 (took %lld ms)",
          (long long)took);
    moq_subscriber_destroy(sub);

    moq_publisher_destroy(pub);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    inbox_free(&inbox);
}

static void test_relay_goes_away(void) {
    printf("-- the relay goes away: clients see DISCONNECTED\n");
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    CHECK(relay != NULL, "moq_relay_start: %s", safe(moq_last_error()));
    if (!relay) return;
    MoqClientConfig config = pinned_config(base_timeout_ms());
    config.tls_fingerprint_sha256 = moq_relay_fingerprint(relay);
    CHECK(strcmp(config.tls_fingerprint_sha256, g_fingerprint) != 0, "each relay has its own certificate");
    States states;
    states_init(&states);
    MoqClient *client = moq_client_create_ex(&config);
    CHECK(client != NULL, "client: %s", safe(moq_last_error()));
    EXPECT_OK(moq_connect(client, moq_relay_url(relay), states_callback, &states), "connect to the second relay");
    CHECK(moq_is_connected(client), "connected");
    int64_t t0 = now_ms();
    moq_relay_stop(relay);
    int64_t stop_ms = now_ms() - t0;
    CHECK(stop_ms <= 6000L * g_scale, "moq_relay_stop took %lld ms (bound ~5 s)", (long long)stop_ms);
    CHECK(states_wait(&states, MOQ_STATE_DISCONNECTED, 5000L * g_scale) >= 0, "DISCONNECTED after the relay stopped");
    CHECK(!moq_is_connected(client), "not connected after the relay stopped");
    EXPECT_FAIL(moq_announce_namespace(client, "gone"), MOQ_ERROR_NOT_CONNECTED, "announce once the relay is gone");
    moq_client_destroy(client);
    states_free(&states);
}

/* ------------------------------------------------------------------------------------------ */
/* Connection failures                                                                          */
/* ------------------------------------------------------------------------------------------ */

/* A UDP port on 127.0.0.1 nobody listens on (bound, read, closed). */
static int closed_udp_port(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t alen = sizeof addr;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && getsockname(fd, (struct sockaddr *)&addr, &alen) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

static void test_connect_closed_port(void) {
    printf("-- connect to a closed port, then to the relay\n");
    int port = closed_udp_port();
    CHECK(port > 0, "found a free UDP port");
    MoqClientConfig config = pinned_config(1500);
    MoqClient *client = moq_client_create_ex(&config);
    CHECK(client != NULL, "moq_client_create_ex: %s", safe(moq_last_error()));
    if (!client || port <= 0) {
        moq_client_destroy(client);
        return;
    }
    States states;
    states_init(&states);
    char url[64];
    snprintf(url, sizeof url, "https://localhost:%d", port);
    int64_t t0 = now_ms();
    MoqResult r = moq_connect(client, url, states_callback, &states);
    int64_t took = now_ms() - t0;
    const char *last = moq_last_error();
    CHECK(r.code == MOQ_ERROR_CONNECTION_FAILED || r.code == MOQ_ERROR_TIMEOUT,
          "connect to closed port: %s (%s)", code_name(r.code), safe(r.message));
    CHECK(took <= 3000, "failed within ~3 s (took %lld ms)", (long long)took);
    CHECK(r.message != NULL && strlen(r.message) > 0, "with a message");
    CHECK(last != NULL && r.message && strcmp(last, r.message) == 0, "moq_last_error matches the message");
    printf("   closed port: %s after %lld ms: %s\n", code_name(r.code), (long long)took, safe(r.message));
    moq_free_str(r.message);
    CHECK(!moq_is_connected(client), "not connected after a failed connect");
    CHECK(states_wait(&states, MOQ_STATE_FAILED, 2000L * g_scale) >= 0, "FAILED reported to the callback");

    r = moq_connect(client, g_url, NULL, NULL);
    CHECK(r.code == MOQ_OK, "the same client then connects to the relay: %s %s", code_name(r.code),
          safe(r.message));
    moq_free_str(r.message);
    CHECK(moq_is_connected(client), "connected after the retry");
    moq_client_destroy(client);
    states_free(&states);
}

/* moq_connect_async to a relay that never answers (a bound UDP socket that drops everything):
 * returns at once, the calling thread stays free, and FAILED arrives by the timeout. */
static void test_connect_async_silent_relay(void) {
    printf("-- moq_connect_async to a relay that never answers\n");
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    int bound = fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
                getsockname(fd, (struct sockaddr *)&addr, &alen) == 0;
    CHECK(bound, "bound a silent UDP socket");
    MoqClientConfig config = pinned_config(1000);
    MoqClient *client = moq_client_create_ex(&config);
    CHECK(client != NULL, "moq_client_create_ex: %s", safe(moq_last_error()));
    if (!bound || !client) {
        if (fd >= 0) close(fd);
        moq_client_destroy(client);
        return;
    }
    States states;
    states_init(&states);
    char url[64];
    snprintf(url, sizeof url, "https://localhost:%d", ntohs(addr.sin_port));
    int64_t t0 = now_ms();
    MoqResult r = moq_connect_async(client, url, states_callback, &states);
    int64_t returned = now_ms() - t0;
    CHECK(r.code == MOQ_OK, "moq_connect_async: %s %s", code_name(r.code), safe(r.message));
    moq_free_str(r.message);
    CHECK(returned < 200L * g_scale, "returned at once (%lld ms)", (long long)returned);
    /* The calling thread is free meanwhile: it does its own work while the connect runs. */
    int64_t worked = 0;
    while (now_ms() - t0 < 500) {
        sleep_ms(10);
        worked += 10;
    }
    /* Counted in 10 ms sleeps, which take longer on a loaded machine: ten of them show the thread was free. */
    CHECK(worked >= 100 && !moq_is_connected(client), "the caller kept working while connecting");
    CHECK(states_wait(&states, MOQ_STATE_FAILED, 5000L * g_scale) >= 0, "FAILED reported");
    int64_t failed_after = now_ms() - t0;
    CHECK(failed_after >= 900, "FAILED only after the 1000 ms timeout (%lld ms)", (long long)failed_after);
    char reason[512];
    r = moq_client_last_error(client, reason, sizeof reason);
    CHECK(r.code == MOQ_OK && strstr(reason, "1000 ms") != NULL, "the reason names the timeout: %s", reason);
    moq_free_str(r.message);
    printf("   silent relay: FAILED after %lld ms: %s\n", (long long)failed_after, reason);
    moq_client_destroy(client);
    states_free(&states);
    close(fd);
}

/* Holds the library's callback thread inside a connection callback (its first CONNECTING) until
 * released, so the events posted meanwhile stay queued behind it. */
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int entered;
    int released;
} Hold;

static void hold_callback(void *user_data, MoqConnectionState state) {
    Hold *hold = (Hold *)user_data;
    if (state != MOQ_STATE_CONNECTING) return;
    struct timespec deadline = deadline_in(10000L * g_scale); /* bounded if the test fails early */
    pthread_mutex_lock(&hold->mutex);
    hold->entered = 1;
    pthread_cond_broadcast(&hold->cond);
    while (!hold->released)
        if (pthread_cond_timedwait(&hold->cond, &hold->mutex, &deadline) == ETIMEDOUT) break;
    pthread_mutex_unlock(&hold->mutex);
}

/* moq_connect_async replaces the connection callback while the old one's CONNECTING and FAILED
 * are still queued (the callback thread is held): once it returns, the old user_data is freed,
 * as the header allows. AddressSanitizer reports any later call of the old callback (it locks
 * the freed mutex). The new callback gets exactly its own CONNECTING and FAILED. */
static void test_replace_connection_callback(void) {
    printf("-- a replaced connection callback never runs with its freed user_data\n");
    int port = closed_udp_port();
    CHECK(port > 0, "found a free UDP port");
    char url[64];
    snprintf(url, sizeof url, "https://localhost:%d", port);
    MoqClientConfig config = pinned_config(300);
    MoqClient *holder = moq_client_create_ex(&config);
    MoqClient *client = moq_client_create_ex(&config);
    CHECK(holder && client, "clients: %s", safe(moq_last_error()));
    Hold *hold = calloc(1, sizeof *hold);
    States *first = malloc(sizeof *first);
    if (!holder || !client || port <= 0 || !hold || !first) {
        moq_client_destroy(holder);
        moq_client_destroy(client);
        free(hold);
        free(first);
        return;
    }
    pthread_mutex_init(&hold->mutex, NULL);
    cond_init_monotonic(&hold->cond);
    EXPECT_OK(moq_connect_async(holder, url, hold_callback, hold), "connect the holding client");
    struct timespec deadline = deadline_in(10000L * g_scale);
    pthread_mutex_lock(&hold->mutex);
    while (!hold->entered)
        if (pthread_cond_timedwait(&hold->cond, &hold->mutex, &deadline) == ETIMEDOUT) break;
    int entered = hold->entered;
    pthread_mutex_unlock(&hold->mutex);
    CHECK(entered, "the holding callback runs");

    states_init(first);
    EXPECT_OK(moq_connect_async(client, url, states_callback, first), "first connect (queued CONNECTING)");
    /* Its FAILED is queued too once the 300 ms connect timed out (the reason is set). */
    char reason[256] = "";
    int64_t t0 = now_ms();
    while (reason[0] == 0 && now_ms() - t0 < 10000L * g_scale) {
        MoqResult r = moq_client_last_error(client, reason, sizeof reason);
        moq_free_str(r.message);
        if (reason[0] == 0) sleep_ms(5);
    }
    CHECK(reason[0] != 0, "the first connect failed");

    States second;
    states_init(&second);
    EXPECT_OK(moq_connect_async(client, url, states_callback, &second), "second connect, another user_data");
    states_free(first);
    free(first); /* allowed once the replacing call returned */

    pthread_mutex_lock(&hold->mutex);
    hold->released = 1;
    pthread_cond_broadcast(&hold->cond);
    pthread_mutex_unlock(&hold->mutex);

    CHECK(states_wait(&second, MOQ_STATE_FAILED, 10000L * g_scale) >= 0, "the new callback gets FAILED");
    pthread_mutex_lock(&second.mutex);
    CHECK(second.count == 2 && second.seen[0] == MOQ_STATE_CONNECTING && second.seen[1] == MOQ_STATE_FAILED,
          "the new callback got exactly CONNECTING, FAILED (%d states)", second.count);
    pthread_mutex_unlock(&second.mutex);
    moq_client_destroy(client);
    moq_client_destroy(holder);
    states_free(&second);
    pthread_cond_destroy(&hold->cond);
    pthread_mutex_destroy(&hold->mutex);
    free(hold);
}

static void test_unpinned_rejected(void) {
    printf("-- default config (no pin) rejects the self-signed relay\n");
    MoqClient *client = moq_client_create();
    CHECK(client != NULL, "moq_client_create: %s", safe(moq_last_error()));
    if (!client) return;
    int64_t t0 = now_ms();
    MoqResult r = moq_connect(client, g_url, NULL, NULL);
    int64_t took = now_ms() - t0;
    CHECK(r.code == MOQ_ERROR_CONNECTION_FAILED, "unpinned connect: %s (%s)", code_name(r.code), safe(r.message));
    CHECK(r.message && (contains_ci(r.message, "certificate") || contains_ci(r.message, "tls")),
          "message mentions certificate/TLS: '%s'", safe(r.message));
    printf("   unpinned: %s after %lld ms: %s\n", code_name(r.code), (long long)took, safe(r.message));
    moq_free_str(r.message);
    CHECK(!moq_is_connected(client), "not connected");
    moq_client_destroy(client);

    /* A pin of the wrong certificate is rejected too. */
    MoqClientConfig config = pinned_config(5000);
    config.tls_fingerprint_sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    client = moq_client_create_ex(&config);
    CHECK(client != NULL, "client with a wrong pin: %s", safe(moq_last_error()));
    if (!client) return;
    r = moq_connect(client, g_url, NULL, NULL);
    CHECK(r.code == MOQ_ERROR_CONNECTION_FAILED, "wrong pin: %s (%s)", code_name(r.code), safe(r.message));
    CHECK(r.message && (contains_ci(r.message, "certificate") || contains_ci(r.message, "fingerprint") ||
                        contains_ci(r.message, "tls")),
          "message mentions the certificate: '%s'", safe(r.message));
    moq_free_str(r.message);
    moq_client_destroy(client);
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else {
            fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
            return 2;
        }
    }
    const char *scale = getenv("MOQ_TEST_TIME_SCALE");
    if (scale && atoi(scale) > 0) g_scale = atoi(scale);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int64_t t0 = now_ms();

    test_library();

    g_relay = moq_relay_start("127.0.0.1:0");
    CHECK(g_relay != NULL, "moq_relay_start: %s", safe(moq_last_error()));
    if (!g_relay) {
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return 1;
    }
    const char *url = moq_relay_url(g_relay);
    const char *fp = moq_relay_fingerprint(g_relay);
    CHECK(url && strncmp(url, "https://localhost:", 18) == 0, "relay url '%s'", safe(url));
    CHECK(fp && strlen(fp) == 64, "relay fingerprint '%s'", safe(fp));
    snprintf(g_url, sizeof g_url, "%s", safe(url));
    snprintf(g_fingerprint, sizeof g_fingerprint, "%s", safe(fp));
    printf("relay %s (sha256 %.16s...)\n", g_url, g_fingerprint);

    test_hostile();
    test_stream_round_trip(quick ? 20 : 200, !quick);
    test_destroy_from_callback();
    if (!quick) {
        test_datagram_round_trip();
        test_client_destroy_from_callback();
        test_relay_goes_away();
        test_not_found();
        test_connect_closed_port();
        test_connect_async_silent_relay();
        test_replace_connection_callback();
        test_unpinned_rejected();
    }

    moq_relay_stop(g_relay);
    prime_last_error(); /* g_prime_client is NULL now: sets an INVALID_HANDLE/url error */
    moq_relay_stop(g_relay);
    CHECK(moq_last_error() != NULL, "stopping the relay twice is recorded");

    /* MOQ_TEST_LINGER_MS: stay alive a while before exiting, so that connections in their
       QUIC draining period are gone (useful when reading valgrind/LSan leak reports). */
    const char *linger = getenv("MOQ_TEST_LINGER_MS");
    if (linger && atol(linger) > 0) sleep_ms(atol(linger));

    printf("(%s run took %lld ms)\n", quick ? "quick" : "full", (long long)(now_ms() - t0));
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
