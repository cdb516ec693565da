/*
 * consumer.c - a minimal program built against an installed moq_ffi (CMake find_package or
 * pkg-config, shared or static): checks the ABI version, starts the embedded relay, publishes
 * OBJECTS objects and checks that a subscriber received all of them, in order.
 * Prints "consumer (<flavour>): OK ..." and exits 0 on success.
 */
#define _POSIX_C_SOURCE 200809L
#include "moq_ffi.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define OBJECTS 100

#ifdef MOQ_FFI_STATIC
#define FLAVOUR "static"
#else
#define FLAVOUR "shared"
#endif

typedef struct {
    pthread_mutex_t mutex;
    int received, in_order, subscribed;
} Seen;

static void on_object(void *user_data, const MoqObjectInfo *info, const uint8_t *data, size_t len) {
    Seen *s = user_data;
    char want[32];
    (void)info;
    pthread_mutex_lock(&s->mutex);
    snprintf(want, sizeof want, "object %d", s->received);
    if (len == strlen(want) && memcmp(data, want, len) == 0) s->in_order++;
    s->received++;
    pthread_mutex_unlock(&s->mutex);
}

static void on_status(void *user_data, MoqSubscriptionStatus status, uint32_t code, const char *message) {
    Seen *s = user_data;
    (void)code;
    (void)message;
    pthread_mutex_lock(&s->mutex);
    if (status == MOQ_SUBSCRIPTION_SUBSCRIBED) s->subscribed = 1;
    pthread_mutex_unlock(&s->mutex);
}

static int get(Seen *s, int *field) {
    pthread_mutex_lock(&s->mutex);
    int v = *field;
    pthread_mutex_unlock(&s->mutex);
    return v;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void) {
    if (!MOQ_FFI_ABI_COMPATIBLE(moq_abi_version())) {
        fprintf(stderr, "consumer: library ABI 0x%06x does not serve header ABI 0x%06x\n", (unsigned)moq_abi_version(),
                (unsigned)MOQ_FFI_ABI_VERSION);
        return 1;
    }
    int ok = 0;
    Seen seen;
    memset(&seen, 0, sizeof seen);
    pthread_mutex_init(&seen.mutex, NULL);
    MoqClient *pub_client = NULL, *sub_client = NULL;
    MoqPublisher *pub = NULL;
    MoqSubscriber *sub = NULL;
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    if (!relay) { fprintf(stderr, "consumer: relay: %s\n", moq_last_error()); return 1; }
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.tls_fingerprint_sha256 = moq_relay_fingerprint(relay);
    pub_client = moq_client_create_ex(&config);
    sub_client = moq_client_create_ex(&config);
    MoqResult r1 = moq_connect(pub_client, moq_relay_url(relay), NULL, NULL);
    MoqResult r2 = moq_connect(sub_client, moq_relay_url(relay), NULL, NULL);
    if (r1.code != MOQ_OK || r2.code != MOQ_OK) {
        fprintf(stderr, "consumer: connect: %s %s\n", r1.message ? r1.message : "", r2.message ? r2.message : "");
        moq_free_str(r1.message);
        moq_free_str(r2.message);
        goto done;
    }
    pub = moq_create_publisher(pub_client, "consumer", "t");
    sub = moq_subscribe_ex(sub_client, "consumer", "t", NULL, on_object, on_status, &seen);
    if (!pub || !sub) { fprintf(stderr, "consumer: %s\n", moq_last_error()); goto done; }
    for (int i = 0; i < 500 && !get(&seen, &seen.subscribed); i++) sleep_ms(10);
    for (int i = 0; i < OBJECTS; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "object %d", i);
        MoqResult r = moq_publish_data(pub, (const uint8_t *)text, (size_t)n, MOQ_DELIVERY_STREAM);
        moq_free_str(r.message);
    }
    for (int i = 0; i < 1000 && get(&seen, &seen.received) < OBJECTS; i++) sleep_ms(10);
    ok = get(&seen, &seen.received) == OBJECTS && get(&seen, &seen.in_order) == OBJECTS;
    printf("consumer (%s): %s, %d/%d objects in order, library %s\n", FLAVOUR, ok ? "OK" : "FAILED",
           get(&seen, &seen.in_order), OBJECTS, moq_version());
done:
    moq_subscriber_destroy(sub);
    moq_publisher_destroy(pub);
    moq_client_destroy(pub_client);
    moq_client_destroy(sub_client);
    moq_relay_stop(relay);
    pthread_mutex_destroy(&seen.mutex);
    return ok ? 0 : 1;
}
