/* example_util.h - tiny helpers shared by the guide's C examples (sleep, monotonic ms). */
#ifndef MOQ_EXAMPLE_UTIL_H
#define MOQ_EXAMPLE_UTIL_H
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "moq_ffi.h"

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A client configuration pinned to the embedded relay's certificate (all else default). */
static inline MoqClientConfig example_config(MoqRelay *relay) {
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.tls_fingerprint_sha256 = moq_relay_fingerprint(relay);
    return config;
}

/* A client connected to the embedded relay: the setup the examples share outside the parts
 * the guide shows. */
static inline MoqClient *example_connect(MoqRelay *relay) {
    MoqClientConfig config = example_config(relay);
    MoqClient *client = moq_client_create_ex(&config);
    MoqResult r = moq_connect(client, moq_relay_url(relay), NULL, NULL);
    moq_free_str(r.message);
    return client;
}
#endif
