/* logging.c - routing the library's log events to the host. */
#include "moq_ffi.h"

#include <stdatomic.h>
#include <stdio.h>

static atomic_int lines;

/* [log] */
static void on_log(void *user_data, MoqLogLevel level, const char *target, const char *message) {
    static const char *names[] = {"off", "error", "warn", "info", "debug", "trace"};
    FILE *out = user_data;
    fprintf(out, "[%s] %s: %s\n", level <= MOQ_LOG_TRACE ? names[level] : "?", target, message);
    atomic_fetch_add(&lines, 1);
}

static void enable_logging(void) {
    /* Process-wide; call again to change the level. Runs on the callback thread. */
    MoqResult r = moq_set_log_callback(MOQ_LOG_INFO, on_log, stderr);
    if (r.code != MOQ_OK) fprintf(stderr, "logging: %s\n", r.message);
    moq_free_str(r.message);
}
/* [/log] */

int main(void) {
    enable_logging();
    MoqRelay *relay = moq_relay_start("127.0.0.1:0"); /* logs at info level */
    moq_relay_stop(relay);
    /* [off] */
    /* Back to the default (silent unless the MOQ_LOG environment variable is set). After this
     * returns the old callback is not running and never runs again. */
    MoqResult r = moq_set_log_callback(MOQ_LOG_OFF, NULL, NULL);
    moq_free_str(r.message);
    /* [/off] */
    return r.code == MOQ_OK ? 0 : 1;
}
