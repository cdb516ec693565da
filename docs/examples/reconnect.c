/* reconnect.c - automatic reconnection and connection-state callbacks. */
#include "example_util.h"
#include "moq_ffi.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int reconnecting;

/* [states] */
static void on_state(void *user_data, MoqConnectionState state) {
    (void)user_data;
    switch (state) {
    case MOQ_STATE_CONNECTING: puts("connecting"); break;
    case MOQ_STATE_CONNECTED: puts("connected"); break; /* again after each reconnect */
    case MOQ_STATE_RECONNECTING: puts("reconnecting"); atomic_store(&reconnecting, 1); break;
    case MOQ_STATE_DISCONNECTED: puts("disconnected"); break;
    case MOQ_STATE_FAILED: puts("failed"); break;
    }
}
/* [/states] */

int main(void) {
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    /* [config] */
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.tls_fingerprint_sha256 = moq_relay_fingerprint(relay);
    config.reconnect = true;            /* CONNECTED -> RECONNECTING -> CONNECTED */
    config.reconnect_initial_ms = 200;  /* first retry after ~200 ms ... */
    config.reconnect_max_ms = 5000;     /* ... doubling (with jitter) up to 5 s */
    config.idle_timeout_ms = 3000;      /* notice a silent relay within ~3 s */
    MoqClient *client = moq_client_create_ex(&config);
    MoqResult r = moq_connect(client, moq_relay_url(relay), on_state, NULL);
    /* [/config] */
    int ok = r.code == MOQ_OK;
    moq_free_str(r.message);
    moq_relay_stop(relay); /* the session drops: the client starts reconnecting */
    for (int i = 0; i < 500 && !atomic_load(&reconnecting); i++) sleep_ms(10);
    ok &= atomic_load(&reconnecting);
    ok &= !moq_is_connected(client);
    moq_client_destroy(client); /* stops the retries; no state callback after this returns */
    return ok ? 0 : 1;
}
