/* Fault loop against a standalone moq-relay process: kill -9 it mid-stream, restart it on the
 * same port, and check that reconnecting clients resume publishing and subscribing by
 * themselves, ROUNDS times. Built with ASan/LSan by scripts/c-tests.sh (no leak, no error).
 * Usage: test_fault RELAY_BIN CERT_DIR FINGERPRINT [ROUNDS] */
#define _GNU_SOURCE
#include "moq_ffi.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"


static int free_udp_port(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static const char *relay_bin, *cert_dir;
static int port;

static pid_t start_relay(void) {
    char listen[64], cert[512], key[512];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(cert, sizeof cert, "%s/cert.pem", cert_dir);
    snprintf(key, sizeof key, "%s/key.pem", cert_dir);
    pid_t pid = fork();
    if (pid == 0) {
        /* The relay's logs are not this test's output. */
        FILE *devnull = freopen("/dev/null", "w", stdout);
        (void)devnull;
        devnull = freopen("/dev/null", "w", stderr);
        (void)devnull;
        execl(relay_bin, relay_bin, "--listen", listen, "--listen-tls-cert", cert, "--listen-tls-key", key,
              "--auth-public", "**", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void kill_relay(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

typedef struct {
    pthread_mutex_t lock;
    MoqConnectionState last;
    int reconnecting, connected;
} States;

static void on_state(void *user_data, MoqConnectionState state) {
    States *states = user_data;
    pthread_mutex_lock(&states->lock);
    states->last = state;
    if (state == MOQ_STATE_RECONNECTING) states->reconnecting++;
    if (state == MOQ_STATE_CONNECTED) states->connected++;
    pthread_mutex_unlock(&states->lock);
}

static int count_of(States *states, int reconnecting) {
    pthread_mutex_lock(&states->lock);
    int n = reconnecting ? states->reconnecting : states->connected;
    pthread_mutex_unlock(&states->lock);
    return n;
}

static atomic_uint last_seen;
static atomic_int received, out_of_order;
static void on_data(void *user_data, const uint8_t *data, size_t len) {
    (void)user_data;
    if (len != 4) return;
    uint32_t value;
    memcpy(&value, data, 4);
    if (atomic_load(&received) > 0 && value <= atomic_load(&last_seen)) atomic_fetch_add(&out_of_order, 1);
    atomic_store(&last_seen, value);
    atomic_fetch_add(&received, 1);
}

static int wait_until_count(States *states, int reconnecting, int want, double seconds) {
    double deadline = now_s() + seconds;
    while (count_of(states, reconnecting) < want && now_s() < deadline) usleep(10000);
    return count_of(states, reconnecting) >= want;
}

/* Publishes numbered objects until `want` more have arrived (bounded); returns how many did. */
static int flow(MoqPublisher *publisher, uint32_t *next, int want, double seconds) {
    int start = atomic_load(&received);
    double deadline = now_s() + seconds;
    while (atomic_load(&received) - start < want && now_s() < deadline) {
        uint32_t value = (*next)++;
        MoqResult r = moq_publish_data(publisher, (const uint8_t *)&value, 4, MOQ_DELIVERY_STREAM);
        moq_free_str(r.message);
        usleep(20000);
    }
    return atomic_load(&received) - start;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s RELAY_BIN CERT_DIR FINGERPRINT [ROUNDS]\n", argv[0]);
        return 2;
    }
    relay_bin = argv[1];
    cert_dir = argv[2];
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    port = free_udp_port();
    pid_t relay = start_relay();
    usleep(500000);
    char url[64];
    snprintf(url, sizeof url, "https://localhost:%d", port);

    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.connect_timeout_ms = 10000;
    config.tls_fingerprint_sha256 = argv[3];
    config.reconnect = true;
    config.reconnect_initial_ms = 100;
    config.reconnect_max_ms = 1000;
    config.keep_alive_ms = 500;
    config.idle_timeout_ms = 2000;
    States pub_states = {PTHREAD_MUTEX_INITIALIZER, MOQ_STATE_DISCONNECTED, 0, 0};
    States sub_states = {PTHREAD_MUTEX_INITIALIZER, MOQ_STATE_DISCONNECTED, 0, 0};
    MoqClient *pub_client = moq_client_create_ex(&config);
    MoqClient *sub_client = moq_client_create_ex(&config);
    MoqResult r = moq_connect(pub_client, url, on_state, &pub_states);
    for (int attempt = 0; r.code != MOQ_OK && attempt < 20; attempt++) { /* the relay may still be starting */
        moq_free_str(r.message);
        usleep(250000);
        r = moq_connect(pub_client, url, on_state, &pub_states);
    }
    CHECK(r.code == MOQ_OK, "publisher connect: %s", r.message ? r.message : "");
    moq_free_str(r.message);
    r = moq_connect(sub_client, url, on_state, &sub_states);
    CHECK(r.code == MOQ_OK, "subscriber connect: %s", r.message ? r.message : "");
    moq_free_str(r.message);
    MoqPublisher *publisher = moq_create_publisher(pub_client, "fault", "objects");
    MoqSubscriber *subscriber = moq_subscribe(sub_client, "fault", "objects", on_data, NULL);
    CHECK(publisher && subscriber, "publisher/subscriber: %s", moq_last_error() ? moq_last_error() : "");
    if (!publisher || !subscriber) {
        kill_relay(relay);
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    uint32_t next = 0;
    CHECK(flow(publisher, &next, 10, 10) >= 10, "initial flow");
    double worst = 0;
    for (int round = 1; round <= rounds; round++) {
        kill_relay(relay);
        double killed = now_s();
        CHECK(wait_until_count(&pub_states, 1, round, 5) && wait_until_count(&sub_states, 1, round, 5),
              "round %d: RECONNECTING reported", round);
        double noticed = now_s() - killed;
        if (noticed > worst) worst = noticed;
        CHECK(noticed < 3.0, "round %d: RECONNECTING after %.2f s", round, noticed);
        relay = start_relay();
        CHECK(wait_until_count(&pub_states, 0, round + 1, 15) && wait_until_count(&sub_states, 0, round + 1, 15),
              "round %d: CONNECTED again", round);
        CHECK(flow(publisher, &next, 10, 15) >= 10, "round %d: publisher and subscriber resumed", round);
    }
    MoqStats stats;
    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    r = moq_client_stats(sub_client, &stats);
    CHECK(r.code == MOQ_OK && stats.reconnects == (uint64_t)rounds, "subscriber reconnects %llu of %d",
          (unsigned long long)stats.reconnects, rounds);
    moq_free_str(r.message);
    CHECK(atomic_load(&out_of_order) == 0, "%d objects out of order", atomic_load(&out_of_order));
    printf("%d kill -9/restart rounds: RECONNECTING within %.2f s at worst; %d objects delivered, %llu "
           "reconnects counted\n",
           rounds, worst, atomic_load(&received), (unsigned long long)stats.reconnects);
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    kill_relay(relay);
    MoqResult down = moq_shutdown(5000);
    CHECK(down.code == MOQ_OK, "moq_shutdown: %s", down.message ? down.message : "");
    moq_free_str(down.message);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
