/*
 * moq-sub - subscribe to a track on a MoQ relay and write its objects to stdout.
 *
 *   moq-sub [options] URL NAMESPACE TRACK
 *
 *   --count N        exit after N objects
 *   --duration S     exit after S seconds
 *   --lines          write a newline after every object
 *   --output FILE    write to FILE instead of stdout
 *   --start next|latest   start at the next group (default) or the newest one
 *   --wait           wait for the track to be published instead of failing with NOT_FOUND
 *   --max-latency MS skip objects that waited longer (counted as drops)
 *
 * A one-line progress display goes to stderr: objects, objects/s, KiB/s, drops (too late,
 * disconnected, queue full) and latency (publish timestamp to arrival; needs synchronised
 * clocks across machines and a protocol version that carries timestamps).
 * Exit status: 0 when the track ended, --count was reached or --duration elapsed; 1 on
 * errors (not found, aborted, connection lost); 2 on usage errors.
 */
#include "tool_common.h"

#include <pthread.h>

static void usage(FILE *to) {
    fprintf(to,
            "usage: moq-sub [options] URL NAMESPACE TRACK\n"
            "Subscribes to a track and writes every object to stdout.\n"
            "  --count N              exit after N objects\n"
            "  --duration S           exit after S seconds\n"
            "  --lines                write a newline after every object\n"
            "  --output FILE          write to FILE instead of stdout\n"
            "  --start next|latest    where to join the track (default next)\n"
            "  --wait                 wait for the track to appear\n"
            "  --max-latency MS       skip objects older than MS\n" TOOL_SHARED_USAGE);
}

typedef struct {
    pthread_mutex_t mutex;
    FILE *out;
    int lines;
    unsigned long long limit; /* --count, 0 = none */
    unsigned long long objects, bytes, write_errors;
    double latency_sum_ms, latency_last_ms;
    unsigned long long latency_samples;
    int subscribed; /* SUBSCRIBED seen */
    int finished;   /* 1 ended/limit reached, 2 failed */
    char reason[256];
} Sub;

static void on_object(void *user_data, const MoqObjectInfo *info, const uint8_t *data, size_t len) {
    Sub *s = user_data;
    int64_t now = tool_wall_us();
    pthread_mutex_lock(&s->mutex);
    if (s->finished || (s->limit && s->objects >= s->limit)) {
        pthread_mutex_unlock(&s->mutex);
        return;
    }
    if ((len && fwrite(data, 1, len, s->out) != len) || (s->lines && fputc('\n', s->out) == EOF)) s->write_errors++;
    s->objects++;
    s->bytes += len;
    if (info && info->timestamp_us > 0) {
        double ms = (double)(now - (int64_t)info->timestamp_us) / 1000.0;
        s->latency_last_ms = ms;
        s->latency_sum_ms += ms;
        s->latency_samples++;
    }
    if (s->limit && s->objects >= s->limit) {
        fflush(s->out);
        s->finished = 1;
        snprintf(s->reason, sizeof s->reason, "received %llu objects", s->objects);
    }
    pthread_mutex_unlock(&s->mutex);
}

static void on_status(void *user_data, MoqSubscriptionStatus status, uint32_t code, const char *message) {
    Sub *s = user_data;
    pthread_mutex_lock(&s->mutex);
    switch (status) {
    case MOQ_SUBSCRIPTION_SUBSCRIBED:
        s->subscribed = 1;
        fprintf(stderr, "moq-sub: subscribed\n");
        break;
    case MOQ_SUBSCRIPTION_ENDED:
        if (!s->finished) {
            s->finished = 1;
            snprintf(s->reason, sizeof s->reason, "track ended");
        }
        break;
    case MOQ_SUBSCRIPTION_NOT_FOUND:
        if (!s->finished) {
            s->finished = 2;
            snprintf(s->reason, sizeof s->reason, "track not found%s%s", message ? ": " : "", message ? message : "");
        }
        break;
    default:
        if (!s->finished) {
            s->finished = 2;
            snprintf(s->reason, sizeof s->reason, "subscription failed (code %u): %s", (unsigned)code,
                     message ? message : "?");
        }
        break;
    }
    pthread_mutex_unlock(&s->mutex);
}

static void report(Sub *s, MoqSubscriber *sub, int64_t start_us, int final) {
    MoqStats st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    moq_free_str(moq_subscriber_stats(sub, &st).message);
    unsigned long long drops = st.objects_dropped_too_late + st.objects_dropped_disconnected + st.objects_dropped_queue_full;
    pthread_mutex_lock(&s->mutex);
    double secs = (double)(tool_mono_us() - start_us) / 1e6;
    if (secs <= 0) secs = 1e-6;
    char latency[64] = "n/a";
    if (s->latency_samples)
        snprintf(latency, sizeof latency, "%.1f ms (avg %.1f)", s->latency_last_ms,
                 s->latency_sum_ms / (double)s->latency_samples);
    fprintf(stderr, "\rmoq-sub: %llu objects, %.1f obj/s, %.1f KiB/s, drops %llu, latency %s   %s", s->objects,
            (double)s->objects / secs, (double)s->bytes / 1024.0 / secs, drops, latency, final ? "\n" : "");
    pthread_mutex_unlock(&s->mutex);
    fflush(stderr);
}

int main(int argc, char **argv) {
    ToolTls tls;
    memset(&tls, 0, sizeof tls);
    const char *pos[3] = {NULL, NULL, NULL}, *output = NULL;
    int npos = 0, lines = 0, wait = 0;
    unsigned long long count = 0;
    double duration = 0;
    uint32_t max_latency = 0;
    MoqStartPosition start = MOQ_START_NEXT_GROUP;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int shared = tool_parse_shared(&tls, argc, argv, &i);
        if (shared < 0) { fprintf(stderr, "moq-sub: %s needs a value\n", a); return 2; }
        if (shared > 0) continue;
        int has_value = i + 1 < argc;
        if (strcmp(a, "--version") == 0) { tool_print_version("moq-sub"); return 0; }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 0; }
        if (strcmp(a, "--lines") == 0) { lines = 1; continue; }
        if (strcmp(a, "--wait") == 0) { wait = 1; continue; }
        if (strcmp(a, "--count") == 0 && has_value) { count = strtoull(argv[++i], NULL, 10); continue; }
        if (strcmp(a, "--duration") == 0 && has_value) { duration = atof(argv[++i]); continue; }
        if (strcmp(a, "--output") == 0 && has_value) { output = argv[++i]; continue; }
        if (strcmp(a, "--max-latency") == 0 && has_value) { max_latency = (uint32_t)strtoul(argv[++i], NULL, 10); continue; }
        if (strcmp(a, "--start") == 0 && has_value) {
            const char *v = argv[++i];
            if (strcmp(v, "next") == 0) start = MOQ_START_NEXT_GROUP;
            else if (strcmp(v, "latest") == 0) start = MOQ_START_LATEST_GROUP;
            else { fprintf(stderr, "moq-sub: --start next|latest\n"); return 2; }
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') { fprintf(stderr, "moq-sub: unknown option %s\n", a); usage(stderr); return 2; }
        if (npos == 3) { usage(stderr); return 2; }
        pos[npos++] = a;
    }
    if (npos != 3) { usage(stderr); return 2; }
    if (!tool_check_abi("moq-sub")) return 1;

    Sub s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mutex, NULL);
    s.lines = lines;
    s.limit = count;
    s.out = output ? fopen(output, "wb") : stdout;
    if (!s.out) { fprintf(stderr, "moq-sub: cannot open %s: %s\n", output, strerror(errno)); return 1; }
    tool_install_signals();
    int status = 1;
    MoqSubscriber *sub = NULL;
    MoqClient *client = tool_connect("moq-sub", &tls, pos[0]);
    if (!client) goto done;
    MoqSubscribeOptions options = moq_subscribe_options_default();
    options.start = start;
    options.wait_for_track = (uint8_t)wait;
    options.max_latency_ms = max_latency;
    sub = moq_subscribe_ex(client, pos[1], pos[2], &options, on_object, on_status, &s);
    if (!sub) { fprintf(stderr, "moq-sub: cannot subscribe to %s/%s: %s\n", pos[1], pos[2], moq_last_error()); goto done; }

    int64_t start_us = tool_mono_us();
    int64_t last = start_us;
    int finished = 0;
    while (!tool_stop) {
        pthread_mutex_lock(&s.mutex);
        finished = s.finished;
        pthread_mutex_unlock(&s.mutex);
        if (finished) break;
        if (!moq_is_connected(client)) {
            pthread_mutex_lock(&s.mutex);
            s.finished = finished = 2;
            snprintf(s.reason, sizeof s.reason, "connection lost");
            pthread_mutex_unlock(&s.mutex);
            break;
        }
        if (duration > 0 && (double)(tool_mono_us() - start_us) / 1e6 >= duration) break;
        tool_sleep_ms(20);
        if (!tls.quiet && tool_mono_us() - last >= 500000) {
            last = tool_mono_us();
            report(&s, sub, start_us, 0);
        }
    }
    if (!tls.quiet) report(&s, sub, start_us, 1); /* final progress line */
    moq_subscriber_destroy(sub);                  /* no callback runs after this returns */
    sub = NULL;
    fflush(s.out);
    {
        pthread_mutex_lock(&s.mutex);
        unsigned long long objects = s.objects, errors = s.write_errors;
        pthread_mutex_unlock(&s.mutex);
        if (!tls.quiet || finished == 2)
            fprintf(stderr, "moq-sub: %llu objects%s%s\n", objects, s.reason[0] ? ", " : "", s.reason);
        status = (finished == 2 || errors) ? 1 : 0;
        if (errors) fprintf(stderr, "moq-sub: %llu write errors\n", errors);
    }
done:
    moq_subscriber_destroy(sub);
    if (client) moq_client_destroy(client);
    free(tls.ca_pem);
    if (s.out && s.out != stdout) fclose(s.out);
    pthread_mutex_destroy(&s.mutex);
    return status;
}
