/* callbacks.c - the callback contract: user_data lifetime, locking, and destroying a
 * subscriber from inside its own callback. */
#include "example_util.h"
#include "moq_ffi.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* [context] */
/* State shared between the callback thread and the application: guard it with a mutex. */
typedef struct {
    pthread_mutex_t mutex;
    int objects;
    MoqSubscriber *self; /* set before any object can arrive (see main) */
    int stopped;
} Watch;

static void on_object(void *user_data, const uint8_t *data, size_t len) {
    Watch *w = user_data;
    (void)data;
    (void)len;
    pthread_mutex_lock(&w->mutex);
    int n = ++w->objects;
    MoqSubscriber *self = (n == 3) ? w->self : NULL;
    pthread_mutex_unlock(&w->mutex); /* never hold your lock while calling into the library */
    if (self) {
        /* Allowed: returns at once, and no further callback of this subscriber follows. */
        moq_subscriber_destroy(self);
        pthread_mutex_lock(&w->mutex);
        w->stopped = 1;
        pthread_mutex_unlock(&w->mutex);
    }
}
/* [/context] */

int main(void) {
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    MoqClient *client = example_connect(relay);
    MoqPublisher *pub = moq_create_publisher(client, "cb", "t");

    /* [lifetime] */
    Watch *w = calloc(1, sizeof *w); /* must outlive every callback that receives it */
    pthread_mutex_init(&w->mutex, NULL);
    pthread_mutex_lock(&w->mutex); /* callbacks wait until `self` is stored */
    w->self = moq_subscribe(client, "cb", "t", on_object, w);
    pthread_mutex_unlock(&w->mutex);
    /* [/lifetime] */
    sleep_ms(200);
    for (int i = 0; i < 10; i++) moq_free_str(moq_publish_data(pub, (const uint8_t *)"x", 1, MOQ_DELIVERY_STREAM).message);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&w->mutex);
        int done = w->stopped;
        pthread_mutex_unlock(&w->mutex);
        if (done) break;
        sleep_ms(10);
    }
    sleep_ms(100);
    pthread_mutex_lock(&w->mutex);
    int objects = w->objects, stopped = w->stopped;
    pthread_mutex_unlock(&w->mutex);
    printf("objects delivered: %d (stopped itself after 3)\n", objects);

    /* [free] */
    /* The subscriber is gone (destroyed in its callback); destroying the client also
     * guarantees no callback is running: now `w` can be freed. */
    moq_publisher_destroy(pub);
    moq_client_destroy(client);
    pthread_mutex_destroy(&w->mutex);
    free(w);
    /* [/free] */
    moq_relay_stop(relay);
    return objects == 3 && stopped ? 0 : 1;
}
