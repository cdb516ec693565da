/*
 * moq-relay-lite - runs the library's embedded MoQ relay (self-signed certificate, anonymous
 * access) until Ctrl-C / SIGTERM or --duration, for local testing and interop checks.
 *
 *   moq-relay-lite [--bind ADDR] [--duration S]
 *
 * Prints two lines on stdout and flushes them, so scripts can read them:
 *   url https://localhost:PORT
 *   fingerprint HEX      (pass to moq-pub/moq-sub --fingerprint)
 */
#include "tool_common.h"

int main(int argc, char **argv) {
    const char *bind = "127.0.0.1:0";
    double duration = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) { tool_print_version("moq-relay-lite"); return 0; }
        if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc) { bind = argv[++i]; continue; }
        if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc) { duration = atof(argv[++i]); continue; }
        fprintf(stderr, "usage: moq-relay-lite [--bind ADDR (default 127.0.0.1:0)] [--duration S] [--version]\n");
        return strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
    if (!tool_check_abi("moq-relay-lite")) return 1;
    tool_install_signals();
    MoqRelay *relay = moq_relay_start(bind);
    if (!relay) {
        fprintf(stderr, "moq-relay-lite: %s\n", moq_last_error());
        return 1;
    }
    printf("url %s\nfingerprint %s\n", moq_relay_url(relay), moq_relay_fingerprint(relay));
    fflush(stdout);
    int64_t start = tool_mono_us();
    while (!tool_stop && (duration <= 0 || (double)(tool_mono_us() - start) / 1e6 < duration)) tool_sleep_ms(50);
    moq_relay_stop(relay);
    return 0;
}
