/*
 * tool_common.h - shared parts of the moq-pub / moq-sub / moq-relay-lite command-line tools:
 * TLS and connection options, a monotonic and a wall clock, and reading a file into memory.
 * The tools use only the public C API (moq_ffi.h).
 */
#ifndef MOQ_TOOL_COMMON_H
#define MOQ_TOOL_COMMON_H

#define _POSIX_C_SOURCE 200809L

#include "moq_ffi.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Options every client tool shares. */
typedef struct {
    int insecure;            /* --insecure: skip certificate verification */
    const char *ca_file;     /* --ca FILE: PEM roots replacing the system roots */
    const char *fingerprint; /* --fingerprint HEX: pin one certificate (SHA-256 of its DER) */
    const char *versions;    /* --versions LIST: e.g. moq-lite-05,moq-transport-14 */
    uint32_t timeout_ms;     /* --connect-timeout MS */
    int quiet;               /* --quiet: no progress line */
    char *ca_pem;            /* loaded --ca contents */
} ToolTls;

static volatile sig_atomic_t tool_stop = 0;

static void tool_on_signal(int sig) {
    (void)sig;
    tool_stop = 1;
}

static inline void tool_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = tool_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static inline int64_t tool_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t tool_wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void tool_sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !tool_stop) {
    }
}

/* Reads a whole file (at most max bytes) into a NUL-terminated heap buffer; NULL on error. */
static inline char *tool_read_file(const char *path, size_t max, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (len == cap) {
            if (cap >= max) { free(buf); buf = NULL; break; }
            cap *= 2;
            char *bigger = realloc(buf, cap + 1);
            if (!bigger) { free(buf); buf = NULL; break; }
            buf = bigger;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0) break;
        len += n;
    }
    if (buf && ferror(f)) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) {
        buf[len] = '\0';
        if (len_out) *len_out = len;
    }
    return buf;
}

/*
 * Handles a shared option at argv[*i]; returns 1 if consumed, 0 if not a shared option, -1 on a
 * usage error (missing value).
 */
static inline int tool_parse_shared(ToolTls *t, int argc, char **argv, int *i) {
    const char *a = argv[*i];
#define TOOL_VALUE() ((*i + 1 < argc) ? argv[++*i] : NULL)
    if (strcmp(a, "--insecure") == 0) { t->insecure = 1; return 1; }
    if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) { t->quiet = 1; return 1; }
    if (strcmp(a, "--ca") == 0) { t->ca_file = TOOL_VALUE(); return t->ca_file ? 1 : -1; }
    if (strcmp(a, "--fingerprint") == 0) { t->fingerprint = TOOL_VALUE(); return t->fingerprint ? 1 : -1; }
    if (strcmp(a, "--versions") == 0) { t->versions = TOOL_VALUE(); return t->versions ? 1 : -1; }
    if (strcmp(a, "--connect-timeout") == 0) {
        const char *v = TOOL_VALUE();
        if (!v) return -1;
        t->timeout_ms = (uint32_t)strtoul(v, NULL, 10);
        return 1;
    }
#undef TOOL_VALUE
    return 0;
}

#define TOOL_SHARED_USAGE                                                                         \
    "  --insecure             do not verify the relay's certificate (testing only)\n"             \
    "  --ca FILE              trust the PEM certificate(s) in FILE instead of the system roots\n" \
    "  --fingerprint HEX      trust exactly the certificate with this SHA-256 (hex)\n"             \
    "  --versions LIST        protocol versions to offer, e.g. moq-lite-05,moq-transport-14\n"     \
    "  --connect-timeout MS   bound on connecting (default 10000)\n"                               \
    "  -q, --quiet            no progress line on stderr\n"                                        \
    "  --version              print the tool and library versions and exit\n"                     \
    "  -h, --help             this help\n"

static inline void tool_print_version(const char *tool) {
    printf("%s %d.%d.%d (ABI 0x%06x), library %s\n", tool, MOQ_FFI_VERSION_MAJOR, MOQ_FFI_VERSION_MINOR,
           MOQ_FFI_VERSION_PATCH, (unsigned)moq_abi_version(), moq_version());
}

/* Refuses a library from another ABI line; prints why. */
static inline int tool_check_abi(const char *tool) {
    if (!MOQ_FFI_ABI_COMPATIBLE(moq_abi_version())) {
        fprintf(stderr, "%s: built for moq-ffi ABI 0x%06x, loaded library is 0x%06x\n", tool,
                (unsigned)MOQ_FFI_ABI_VERSION, (unsigned)moq_abi_version());
        return 0;
    }
    return 1;
}

/* Creates and connects a client with the shared options; NULL (message printed) on failure. */
static inline MoqClient *tool_connect(const char *tool, ToolTls *t, const char *url) {
    int tls_options = (t->insecure != 0) + (t->ca_file != NULL) + (t->fingerprint != NULL);
    if (tls_options > 1) {
        fprintf(stderr, "%s: use at most one of --insecure, --ca, --fingerprint\n", tool);
        return NULL;
    }
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.connect_timeout_ms = t->timeout_ms;
    config.tls_insecure_skip_verify = t->insecure != 0;
    config.tls_fingerprint_sha256 = t->fingerprint;
    config.versions = t->versions;
    if (t->ca_file) {
        t->ca_pem = tool_read_file(t->ca_file, MOQ_MAX_PEM_LEN, NULL);
        if (!t->ca_pem) {
            fprintf(stderr, "%s: cannot read --ca %s: %s\n", tool, t->ca_file, strerror(errno));
            return NULL;
        }
        config.tls_root_ca_pem = t->ca_pem;
    }
    MoqClient *client = moq_client_create_ex(&config);
    if (!client) {
        fprintf(stderr, "%s: %s\n", tool, moq_last_error());
        return NULL;
    }
    MoqResult r = moq_connect(client, url, NULL, NULL);
    if (r.code != MOQ_OK) {
        fprintf(stderr, "%s: cannot connect to %s: %s\n", tool, url, r.message ? r.message : "?");
        moq_free_str(r.message);
        moq_client_destroy(client);
        return NULL;
    }
    return client;
}

#endif
