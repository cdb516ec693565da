/* example_util.h - tiny helpers shared by the guide's C examples (sleep, monotonic ms). */
#ifndef MOQ_EXAMPLE_UTIL_H
#define MOQ_EXAMPLE_UTIL_H
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
#endif
