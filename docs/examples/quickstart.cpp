// quickstart.cpp - the guide's "getting started in C++" (moq_ffi.hpp, C++17).
#include "moq_ffi.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

int main() {
    // [all]
    try {
        moq::Relay relay = moq::Relay::start("127.0.0.1:0");
        moq::ClientConfig config;
        config.tls_fingerprint_sha256 = std::string(relay.fingerprint());
        moq::Client client = moq::Client::create(config);
        client.connect(relay.url());

        moq::Publisher pub = client.publish("demo", "chat");
        std::atomic<int> received{0};
        std::atomic<bool> live{false};
        moq::Subscriber sub = client.subscribe(
            "demo", "chat",
            [&](const moq::Object &o) { // library callback thread; o.data valid during the call
                std::printf("group %llu: %.*s\n", static_cast<unsigned long long>(o.group_id),
                            static_cast<int>(o.data.size()), reinterpret_cast<const char *>(o.data.data()));
                received++;
            },
            [&](const moq::Status &s) { live = live || s.status == MOQ_SUBSCRIPTION_SUBSCRIBED; });

        for (int i = 0; i < 1000 && !live; i++) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        for (int i = 0; i < 10; i++) pub.publish("message " + std::to_string(i));
        for (int i = 0; i < 500 && received < 10; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return received == 10 ? 0 : 1;
        // Destructors run in reverse order: sub, pub, client, relay. No callback runs after
        // `sub` is destroyed, so the lambdas' references stay valid.
    } catch (const moq::Error &e) {
        std::fprintf(stderr, "moq error %d: %s\n", static_cast<int>(e.code()), e.what());
        return 1;
    }
    // [/all]
}
