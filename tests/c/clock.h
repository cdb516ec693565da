/*
 * clock.h - CLOCK_MONOTONIC helpers shared by the C tests: the time now in milliseconds, an
 * absolute deadline for pthread_cond_timedwait, a sleep that resumes after signals, and a
 * condition variable that waits on the monotonic clock (so a wall-clock step never stretches or
 * cuts a bounded wait). Every function is static inline: a test that uses only some of them
 * still compiles warning-free. Include after defining _POSIX_C_SOURCE 200809L.
 */
#ifndef MOQ_TEST_CLOCK_H
#define MOQ_TEST_CLOCK_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC. */
static inline int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Absolute CLOCK_MONOTONIC time `ms` from now (for pthread_cond_timedwait on a condition made by
 * cond_init_monotonic, or clock_nanosleep with TIMER_ABSTIME). */
static inline struct timespec deadline_in(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Sleeps `ms` milliseconds, resuming after a signal. */
static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
static inline void cond_init_monotonic(pthread_cond_t *cond) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

#endif /* MOQ_TEST_CLOCK_H */
