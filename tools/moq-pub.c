/*
 * moq-pub - publish stdin, a file or generated data to a MoQ relay as one track.
 *
 *   moq-pub [options] URL NAMESPACE TRACK
 *
 * Input (default: stdin, cut into objects of --size bytes):
 *   --file PATH       read PATH instead of stdin
 *   --lines           one object per input line (the newline is not sent)
 *   --generate N      publish N generated objects of --size bytes instead (0 = until stopped);
 *                     each starts with its 8-byte big-endian sequence number
 *   --size BYTES      object size (chunks and generated objects; default 1024)
 *   --rate N          at most N objects per second (default: as fast as possible)
 * Delivery:
 *   --datagram        datagrams (lossy, <= 1024 bytes) instead of streams
 *   --group N         N objects per group (default 1: every object starts a group)
 *   --delay MS        wait MS after announcing before the first object (lets subscribers join)
 *   --linger MS       after the input ends, wait MS before finishing the track so the
 *                     relay forwards the tail first (default 500)
 *
 * A one-line progress display (objects, rate, bytes/s, refused) is written to stderr.
 * Exit status: 0 when everything was published, 1 on errors, 2 on usage errors.
 */
#include "tool_common.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: moq-pub [options] URL NAMESPACE TRACK\n"
            "Publishes stdin (or a file, or generated data) as objects of one track.\n"
            "  --file PATH            read PATH instead of stdin\n"
            "  --lines                one object per input line\n"
            "  --generate N           publish N generated objects (0 = until Ctrl-C)\n"
            "  --size BYTES           object size for chunks / generated objects (default 1024)\n"
            "  --rate N               at most N objects per second\n"
            "  --datagram             send datagrams instead of streams\n"
            "  --group N              objects per group (default 1)\n"
            "  --delay MS             wait after announcing, before the first object\n"
            "  --linger MS            wait before finishing the track (default 500)\n" TOOL_SHARED_USAGE);
}

typedef struct {
    MoqPublisher *pub;
    MoqDeliveryMode mode;
    uint32_t group_size; /* objects per group */
    uint32_t in_group;   /* objects written into the open group */
    uint64_t objects, bytes, refused;
    int64_t start_us, last_report_us;
    int quiet;
} Pub;

static void report(Pub *p, int final) {
    if (p->quiet) return;
    int64_t now = tool_mono_us();
    if (!final && now - p->last_report_us < 500000) return;
    p->last_report_us = now;
    double secs = (double)(now - p->start_us) / 1e6;
    if (secs <= 0) secs = 1e-6;
    fprintf(stderr, "\rmoq-pub: %llu objects, %.1f obj/s, %.1f KiB/s, refused %llu   %s",
            (unsigned long long)p->objects, (double)p->objects / secs, (double)p->bytes / 1024.0 / secs,
            (unsigned long long)p->refused, final ? "\n" : "");
    fflush(stderr);
}

/* Publishes one object; returns 0 on a fatal error. */
static int publish(Pub *p, const uint8_t *data, size_t len) {
    MoqResult r;
    if (p->group_size <= 1) {
        r = moq_publish_data(p->pub, data, len, p->mode);
    } else {
        if (p->in_group == 0) {
            uint64_t group = 0;
            r = moq_publisher_begin_group(p->pub, &group);
            if (r.code != MOQ_OK) goto failed;
        }
        r = moq_publish_object(p->pub, data, len, (uint64_t)tool_wall_us());
        if (r.code == MOQ_OK && ++p->in_group == p->group_size) {
            p->in_group = 0;
            moq_free_str(r.message);
            r = moq_publisher_end_group(p->pub);
        }
    }
failed:
    if (r.code == MOQ_OK) {
        p->objects++;
        p->bytes += len;
    } else if (r.code == MOQ_ERROR_NOT_CONNECTED || r.code == MOQ_ERROR_WOULD_BLOCK) {
        p->refused++; /* counted, not fatal: the session may come back */
    } else {
        fprintf(stderr, "\nmoq-pub: publish failed: %s\n", r.message ? r.message : "?");
        moq_free_str(r.message);
        return 0;
    }
    moq_free_str(r.message);
    report(p, 0);
    return 1;
}

static void pace(int64_t start_us, uint64_t sent, double rate) {
    if (rate <= 0) return;
    int64_t due = start_us + (int64_t)((double)sent * 1e6 / rate);
    int64_t now = tool_mono_us();
    if (due > now) tool_sleep_ms((long)((due - now) / 1000));
}

int main(int argc, char **argv) {
    ToolTls tls;
    memset(&tls, 0, sizeof tls);
    const char *file = NULL, *pos[3] = {NULL, NULL, NULL};
    int npos = 0, lines = 0, generate = 0, datagram = 0;
    unsigned long long gen_count = 0;
    size_t size = 1024;
    double rate = 0;
    uint32_t group = 1;
    long linger = 500, delay = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int shared = tool_parse_shared(&tls, argc, argv, &i);
        if (shared < 0) { fprintf(stderr, "moq-pub: %s needs a value\n", a); return 2; }
        if (shared > 0) continue;
        int has_value = i + 1 < argc;
        if (strcmp(a, "--version") == 0) { tool_print_version("moq-pub"); return 0; }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 0; }
        if (strcmp(a, "--lines") == 0) { lines = 1; continue; }
        if (strcmp(a, "--datagram") == 0) { datagram = 1; continue; }
        if (strcmp(a, "--file") == 0 && has_value) { file = argv[++i]; continue; }
        if (strcmp(a, "--generate") == 0 && has_value) { generate = 1; gen_count = strtoull(argv[++i], NULL, 10); continue; }
        if (strcmp(a, "--size") == 0 && has_value) { size = (size_t)strtoull(argv[++i], NULL, 10); continue; }
        if (strcmp(a, "--rate") == 0 && has_value) { rate = atof(argv[++i]); continue; }
        if (strcmp(a, "--group") == 0 && has_value) { group = (uint32_t)strtoul(argv[++i], NULL, 10); continue; }
        if (strcmp(a, "--linger") == 0 && has_value) { linger = atol(argv[++i]); continue; }
        if (strcmp(a, "--delay") == 0 && has_value) { delay = atol(argv[++i]); continue; }
        if (a[0] == '-' && a[1] != '\0') { fprintf(stderr, "moq-pub: unknown option %s\n", a); usage(stderr); return 2; }
        if (npos == 3) { usage(stderr); return 2; }
        pos[npos++] = a;
    }
    if (npos != 3) { usage(stderr); return 2; }
    if (size == 0 || size > MOQ_MAX_OBJECT_SIZE) { fprintf(stderr, "moq-pub: --size must be 1..%d\n", MOQ_MAX_OBJECT_SIZE); return 2; }
    if (group == 0 || group > MOQ_MAX_GROUP_OBJECTS) { fprintf(stderr, "moq-pub: --group must be 1..%d\n", MOQ_MAX_GROUP_OBJECTS); return 2; }
    if (!tool_check_abi("moq-pub")) return 1;

    FILE *in = NULL;
    if (!generate) {
        in = (!file || strcmp(file, "-") == 0) ? stdin : fopen(file, "rb");
        if (!in) { fprintf(stderr, "moq-pub: cannot open %s: %s\n", file, strerror(errno)); return 1; }
    }
    tool_install_signals();
    int status = 1;
    MoqPublisher *pub = NULL;
    uint8_t *buf = NULL;
    MoqClient *client = tool_connect("moq-pub", &tls, pos[0]);
    if (!client) goto done;
    MoqPublisherOptions options = moq_publisher_options_default();
    options.delivery_mode = datagram ? MOQ_DELIVERY_DATAGRAM : MOQ_DELIVERY_STREAM;
    pub = moq_create_publisher_opts(client, pos[1], pos[2], &options);
    if (!pub) { fprintf(stderr, "moq-pub: cannot publish %s/%s: %s\n", pos[1], pos[2], moq_last_error()); goto done; }
    if (!tls.quiet) fprintf(stderr, "moq-pub: publishing %s %s on %s\n", pos[1], pos[2], pos[0]);

    if (delay > 0) tool_sleep_ms(delay);
    Pub p;
    memset(&p, 0, sizeof p);
    p.pub = pub;
    p.mode = options.delivery_mode;
    p.group_size = group;
    p.quiet = tls.quiet;
    p.start_us = p.last_report_us = tool_mono_us();
    buf = malloc(size + 1);
    if (!buf) goto done;
    int ok = 1;
    if (generate) {
        for (unsigned long long n = 0; ok && !tool_stop && (gen_count == 0 || n < gen_count); n++) {
            for (size_t k = 0; k < size; k++) buf[k] = (uint8_t)(n * 31u + k);
            for (size_t k = 0; k < 8 && k < size; k++) buf[k] = (uint8_t)(n >> (56 - 8 * k));
            pace(p.start_us, n, rate);
            ok = publish(&p, buf, size);
        }
    } else if (lines) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (ok && !tool_stop && (n = getline(&line, &cap, in)) >= 0) {
            if (n > 0 && line[n - 1] == '\n') n--;
            if ((size_t)n > MOQ_MAX_OBJECT_SIZE) { fprintf(stderr, "\nmoq-pub: line too long\n"); ok = 0; break; }
            pace(p.start_us, p.objects + p.refused, rate);
            ok = publish(&p, (const uint8_t *)line, (size_t)n);
        }
        free(line);
    } else {
        size_t n;
        while (ok && !tool_stop && (n = fread(buf, 1, size, in)) > 0) {
            pace(p.start_us, p.objects + p.refused, rate);
            ok = publish(&p, buf, n);
        }
    }
    if (in && ferror(in)) { fprintf(stderr, "\nmoq-pub: read error: %s\n", strerror(errno)); ok = 0; }
    if (p.group_size > 1 && p.in_group > 0) moq_free_str(moq_publisher_end_group(pub).message);
    report(&p, 1);
    /* Finishing the track right away can overtake objects still on their way to the relay
     * (subscribers would see ENDED without the tail), so wait first, then finish. */
    tool_sleep_ms(linger);
    MoqResult r = moq_publisher_finish(pub);
    moq_free_str(r.message);
    tool_sleep_ms(200); /* lets the end of the track reach the relay before disconnecting */
    status = ok && p.refused == 0 ? 0 : 1;
done:
    free(buf);
    moq_publisher_destroy(pub);
    if (client) moq_client_destroy(client);
    free(tls.ca_pem);
    if (in && in != stdin) fclose(in);
    return status;
}
