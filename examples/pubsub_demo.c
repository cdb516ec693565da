/*
 * pubsub_demo.c - moq-ffi end to end from C: an embedded relay, a publisher and a subscriber.
 *
 *   1. starts the embedded relay on 127.0.0.1 (a free port, self-signed certificate);
 *   2. connects two clients that pin the relay's certificate fingerprint;
 *   3. subscribes to demo/objects, publishes OBJECTS objects of OBJECT_SIZE bytes (stream
 *      mode: reliable, in order), waits (bounded) for them and checks order and contents;
 *   4. prints what arrived and tears everything down. It prints no speed figures: the publisher
 *      is paced and the demo runs the debug build; scripts/bench.sh measures the release build.
 *
 * Exit status 0 only if every object arrived, in order, intact.
 *
 * Build (see scripts/c-tests.sh demo):
 *   gcc -std=c99 -Wall -Iinclude examples/pubsub_demo.c -Ltarget/debug -lmoq_ffi \
 *       -Wl,-rpath,$PWD/target/debug -lpthread -o pubsub_demo
 */
#define _POSIX_C_SOURCE 200809L

#include "moq_ffi.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OBJECTS 2000u
#define OBJECT_SIZE 1024u
#define WAIT_MS 30000

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Object i: its index (4 bytes, big endian), then bytes derived from it. */
static void fill_object(uint32_t i, uint8_t *buf) {
    buf[0] = (uint8_t)(i >> 24);
    buf[1] = (uint8_t)(i >> 16);
    buf[2] = (uint8_t)(i >> 8);
    buf[3] = (uint8_t)i;
    for (uint32_t k = 4; k < OBJECT_SIZE; k++) buf[k] = (uint8_t)(i * 31u + k);
}

/* What the subscriber saw; the callback runs on the library's callback thread. */
typedef struct {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    uint32_t received;
    uint64_t bytes;
    uint32_t out_of_order; /* objects whose index or contents were not the expected ones */
} Stats;

static void on_object(void *user_data, const uint8_t *data, size_t len) {
    Stats *s = user_data;
    uint8_t want[OBJECT_SIZE];
    pthread_mutex_lock(&s->mutex);
    fill_object(s->received, want);
    if (len != OBJECT_SIZE || memcmp(data, want, OBJECT_SIZE) != 0) s->out_of_order++;
    s->received++;
    s->bytes += len;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mutex);
}

static const char *state_name(MoqConnectionState state) {
    switch (state) {
    case MOQ_STATE_DISCONNECTED: return "disconnected";
    case MOQ_STATE_CONNECTING: return "connecting";
    case MOQ_STATE_CONNECTED: return "connected";
    case MOQ_STATE_FAILED: return "failed";
    case MOQ_STATE_RECONNECTING: return "reconnecting";
    }
    return "?";
}

static void on_state(void *user_data, MoqConnectionState state) {
    (void)user_data;
    (void)state;
    /* Logged only when MOQ_DEMO_VERBOSE is set, to keep the output short. */
    if (getenv("MOQ_DEMO_VERBOSE")) fprintf(stderr, "  [%s] %s\n", (const char *)user_data, state_name(state));
}

static MoqClient *connect_client(const char *url, const char *fingerprint, const char *name) {
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.connect_timeout_ms = 5000;
    config.tls_fingerprint_sha256 = fingerprint; /* trust exactly the relay's certificate */
    MoqClient *client = moq_client_create_ex(&config);
    if (!client) {
        fprintf(stderr, "moq_client_create_ex: %s\n", moq_last_error());
        return NULL;
    }
    MoqResult r = moq_connect(client, url, on_state, (void *)name);
    if (r.code != MOQ_OK) {
        fprintf(stderr, "%s: moq_connect(%s) failed (%d): %s\n", name, url, (int)r.code, r.message);
        moq_free_str(r.message);
        moq_client_destroy(client);
        return NULL;
    }
    return client;
}

int main(void) {
    int ok = 0;
    MoqRelay *relay = NULL;
    MoqClient *pub_client = NULL, *sub_client = NULL;
    MoqPublisher *publisher = NULL;
    MoqSubscriber *subscriber = NULL;
    Stats stats;
    memset(&stats, 0, sizeof stats);
    pthread_mutex_init(&stats.mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&stats.cond, &attr);
    pthread_condattr_destroy(&attr);

    const char *version = moq_version();
    const char *paren = strstr(version, " (");
    printf("library:    %.*s\n", paren ? (int)(paren - version) : (int)strlen(version), version);
    relay = moq_relay_start("127.0.0.1:0");
    if (!relay) {
        fprintf(stderr, "moq_relay_start: %s\n", moq_last_error());
        goto done;
    }
    const char *url = moq_relay_url(relay);
    const char *fingerprint = moq_relay_fingerprint(relay);
    printf("relay:      %s (certificate sha256 %.16s...)\n", url, fingerprint);

    pub_client = connect_client(url, fingerprint, "publisher");
    sub_client = connect_client(url, fingerprint, "subscriber");
    if (!pub_client || !sub_client) goto done;

    publisher = moq_create_publisher(pub_client, "demo", "objects");
    if (!publisher) {
        fprintf(stderr, "moq_create_publisher: %s\n", moq_last_error());
        goto done;
    }
    subscriber = moq_subscribe(sub_client, "demo", "objects", on_object, &stats);
    if (!subscriber) {
        fprintf(stderr, "moq_subscribe: %s\n", moq_last_error());
        goto done;
    }

    static uint8_t object[OBJECT_SIZE];
    for (uint32_t i = 0; i < OBJECTS; i++) {
        fill_object(i, object);
        MoqResult r = moq_publish_data(publisher, object, sizeof object, MOQ_DELIVERY_STREAM);
        if (r.code != MOQ_OK) {
            fprintf(stderr, "moq_publish_data #%u failed (%d): %s\n", i, (int)r.code, r.message);
            moq_free_str(r.message);
            goto done;
        }
        if (i % 100 == 99) sleep_ms(1); /* a modest pace */
    }

    /* Wait, bounded, for everything to arrive. */
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&stats.mutex);
    while (stats.received < OBJECTS)
        if (pthread_cond_timedwait(&stats.cond, &stats.mutex, &deadline) == ETIMEDOUT) break;
    pthread_mutex_unlock(&stats.mutex);

    /* Stop delivery before reading the totals (and before `stats` goes away). */
    moq_subscriber_destroy(subscriber);
    subscriber = NULL;

    printf("published:  %u objects x %u B\n", OBJECTS, OBJECT_SIZE);
    printf("received:   %u objects, %llu bytes, checked for order and contents\n", stats.received,
           (unsigned long long)stats.bytes);
    /* No speed figures: the publisher is paced and this may be a debug build. */
    printf("speed:      not measured here; scripts/bench.sh measures the release build\n");
    ok = stats.received == OBJECTS && stats.out_of_order == 0;
    if (stats.out_of_order) printf("ERROR:      %u objects out of order or corrupted\n", stats.out_of_order);
    if (stats.received != OBJECTS) printf("ERROR:      %u of %u objects missing\n", OBJECTS - stats.received, OBJECTS);

done:
    moq_subscriber_destroy(subscriber); /* NULL is ignored */
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    moq_relay_stop(relay);
    pthread_cond_destroy(&stats.cond);
    pthread_mutex_destroy(&stats.mutex);
    printf("result:     %s\n", ok ? "OK, all objects arrived in order" : "FAILED");
    return ok ? 0 : 1;
}
