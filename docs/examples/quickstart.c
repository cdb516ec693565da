/* quickstart.c - the guide's "getting started in C": embedded relay, one publisher, one
 * subscriber, ten objects. Build: see docs/guide/getting-started-c.md. */
#include "example_util.h"
#include "moq_ffi.h"

#include <stdatomic.h>
#include <stdio.h>

/* [callback] */
static atomic_int received;

/* Runs on the library's callback thread. `data` is valid only during this call. */
static void on_object(void *user_data, const uint8_t *data, size_t len) {
    (void)user_data;
    printf("got %.*s\n", (int)len, (const char *)data);
    atomic_fetch_add(&received, 1);
}
/* [/callback] */

int main(void) {
    /* [setup] */
    MoqRelay *relay = moq_relay_start("127.0.0.1:0"); /* a relay in this process, free port */
    if (!relay) {
        fprintf(stderr, "relay: %s\n", moq_last_error());
        return 1;
    }
    MoqClientConfig config = {0};
    config.struct_size = sizeof config;
    config.tls_fingerprint_sha256 = moq_relay_fingerprint(relay); /* trust its certificate */

    MoqClient *client = moq_client_create_ex(&config);
    MoqResult r = moq_connect(client, moq_relay_url(relay), NULL, NULL);
    if (r.code != MOQ_OK) {
        fprintf(stderr, "connect: %s\n", r.message);
        moq_free_str(r.message); /* the caller owns MoqResult.message */
        moq_client_destroy(client);
        moq_relay_stop(relay);
        return 1;
    }
    /* [/setup] */

    /* [pubsub] */
    MoqPublisher *pub = moq_create_publisher(client, "demo", "chat");
    MoqSubscriber *sub = moq_subscribe(client, "demo", "chat", on_object, NULL);
    if (!pub || !sub) {
        fprintf(stderr, "%s\n", moq_last_error());
        return 1;
    }
    sleep_ms(200); /* objects published before the subscription is live are not delivered */
    for (int i = 0; i < 10; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "message %d", i);
        r = moq_publish_data(pub, (const uint8_t *)text, (size_t)n, MOQ_DELIVERY_STREAM);
        moq_free_str(r.message); /* NULL on success: freeing NULL is fine */
    }
    for (int waited = 0; atomic_load(&received) < 10 && waited < 5000; waited += 10) sleep_ms(10);
    /* [/pubsub] */

    /* [teardown] */
    moq_subscriber_destroy(sub); /* after this returns, on_object is never called again */
    moq_publisher_destroy(pub);
    moq_client_destroy(client);
    moq_relay_stop(relay);
    /* [/teardown] */
    return atomic_load(&received) == 10 ? 0 : 1;
}
