/* Loads libmoq_ffi with dlopen, uses it, calls moq_shutdown and dlclose, many times: no crash,
 * no library thread left behind (checked in /proc/self/task), and a clean valgrind run.
 * Usage: test_dlopen LIBRARY_PATH [ITERATIONS] */
#define _GNU_SOURCE
#include "moq_ffi.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static int thread_count(void) {
    DIR *dir = opendir("/proc/self/task");
    int count = 0;
    struct dirent *entry;
    if (!dir) return -1;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.') count++;
    closedir(dir);
    return count;
}


static atomic_int received;
static void on_data(void *user_data, const uint8_t *data, size_t len) {
    (void)user_data;
    (void)data;
    (void)len;
    atomic_fetch_add(&received, 1);
}

#define LOAD(lib, name) typeof(&name) p_##name = (typeof(&name))dlsym(lib, #name)

static void round_trip(void *lib, int iteration) {
    LOAD(lib, moq_relay_start);
    LOAD(lib, moq_relay_url);
    LOAD(lib, moq_relay_fingerprint);
    LOAD(lib, moq_client_create_ex);
    LOAD(lib, moq_connect);
    LOAD(lib, moq_create_publisher);
    LOAD(lib, moq_subscribe);
    LOAD(lib, moq_publish_data);
    LOAD(lib, moq_free_str);
    LOAD(lib, moq_last_error);
    LOAD(lib, moq_shutdown);
    CHECK(p_moq_relay_start && p_moq_shutdown && p_moq_subscribe, "dlsym failed: %s", dlerror());
    if (!p_moq_relay_start || !p_moq_shutdown || !p_moq_subscribe) return;

    MoqRelay *relay = p_moq_relay_start("127.0.0.1:0");
    CHECK(relay != NULL, "relay: %s", p_moq_last_error());
    if (!relay) return;
    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.connect_timeout_ms = 20000; /* valgrind is slow */
    config.tls_fingerprint_sha256 = p_moq_relay_fingerprint(relay);
    MoqClient *pub_client = p_moq_client_create_ex(&config);
    MoqClient *sub_client = p_moq_client_create_ex(&config);
    MoqResult r1 = p_moq_connect(pub_client, p_moq_relay_url(relay), NULL, NULL);
    MoqResult r2 = p_moq_connect(sub_client, p_moq_relay_url(relay), NULL, NULL);
    CHECK(r1.code == MOQ_OK && r2.code == MOQ_OK, "connect: %s / %s", r1.message ? r1.message : "",
          r2.message ? r2.message : "");
    p_moq_free_str(r1.message);
    p_moq_free_str(r2.message);
    MoqPublisher *publisher = p_moq_create_publisher(pub_client, "dl", "t");
    CHECK(publisher != NULL, "publisher: %s", p_moq_last_error());
    atomic_store(&received, 0);
    MoqSubscriber *subscriber = p_moq_subscribe(sub_client, "dl", "t", on_data, NULL);
    CHECK(subscriber != NULL, "subscribe: %s", p_moq_last_error());
    for (uint8_t i = 0; i < 10 && publisher && subscriber; i++) {
        MoqResult r = p_moq_publish_data(publisher, &i, 1, MOQ_DELIVERY_STREAM);
        CHECK(r.code == MOQ_OK, "publish: %s", r.message ? r.message : "");
        p_moq_free_str(r.message);
    }
    double deadline = now_s() + 20;
    while (subscriber && atomic_load(&received) < 10 && now_s() < deadline) usleep(1000);
    CHECK(!subscriber || atomic_load(&received) == 10, "iteration %d: received %d of 10", iteration,
          atomic_load(&received));
    /* No destroys: moq_shutdown releases every handle. */
    MoqResult down = p_moq_shutdown(10000);
    CHECK(down.code == MOQ_OK, "moq_shutdown: %s", down.message ? down.message : "");
    p_moq_free_str(down.message);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s LIBRARY_PATH [ITERATIONS]\n", argv[0]);
        return 2;
    }
    int iterations = argc > 2 ? atoi(argv[2]) : 100;
    int baseline = thread_count();
    double start = now_s();
    for (int i = 0; i < iterations; i++) {
        void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        CHECK(lib != NULL, "dlopen: %s", dlerror());
        if (!lib) break;
        round_trip(lib, i);
        CHECK(dlclose(lib) == 0, "dlclose: %s", dlerror());
        int threads = thread_count();
        CHECK(threads == baseline, "iteration %d: %d threads after moq_shutdown + dlclose, %d before", i,
              threads, baseline);
    }
    printf("%d dlopen/shutdown/dlclose cycles in %.1f s; threads at the end: %d (baseline %d)\n", iterations,
           now_s() - start, thread_count(), baseline);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
