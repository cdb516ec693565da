/* poll.c - poll mode: no callbacks, events drained on the application's own thread (e.g. once
 * per game frame). */
#include "example_util.h"
#include "moq_ffi.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    MoqClientConfig config = example_config(relay);
    config.poll_events = true; /* connection states as events too */
    MoqClient *client = moq_client_create_ex(&config);
    MoqResult r = moq_connect(client, moq_relay_url(relay), NULL, NULL);
    moq_free_str(r.message);
    MoqPublisher *pub = moq_create_publisher(client, "game", "state");

    /* [subscribe] */
    MoqSubscribeOptions options = moq_subscribe_options_default();
    options.delivery = MOQ_DELIVER_POLL;          /* callbacks must be NULL */
    options.queue_capacity = 256;                 /* per subscription */
    options.queue_policy = MOQ_QUEUE_LATEST_ONLY; /* a game wants the newest state */
    MoqSubscriber *sub = moq_subscribe_ex(client, "game", "state", &options, NULL, NULL, NULL);
    /* [/subscribe] */

    int objects = 0, subscribed = 0;
    for (int frame = 0; frame < 300 && objects == 0; frame++) {
        if (subscribed && frame % 10 == 0)
            moq_free_str(moq_publish_data(pub, (const uint8_t *)"pos=1,2", 7, MOQ_DELIVERY_STREAM).message);
        /* [frame] */
        MoqEvent events[32];
        size_t n = moq_poll(client, events, 32, 0); /* 0: never wait inside a frame */
        for (size_t i = 0; i < n; i++) {
            const MoqEvent *e = &events[i];
            if (e->kind == MOQ_EVENT_OBJECT) {
                /* e->data is valid until the next moq_poll on this client */
                printf("object group %llu: %.*s\n", (unsigned long long)e->object.group_id, (int)e->data_len,
                       (const char *)e->data);
                objects++;
            } else if (e->kind == MOQ_EVENT_STATUS && e->status == MOQ_SUBSCRIPTION_SUBSCRIBED) {
                subscribed = 1;
            } else if (e->kind == MOQ_EVENT_CONNECTION) {
                printf("connection state %d\n", (int)e->connection_state);
            }
        }
        /* [/frame] */
        sleep_ms(16);
    }
    moq_subscriber_destroy(sub);
    moq_publisher_destroy(pub);
    moq_client_destroy(client);
    moq_relay_stop(relay);
    return objects > 0 ? 0 : 1;
}
