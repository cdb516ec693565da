// consumer.cpp - the C++17 wrapper (moq_ffi.hpp) from an installed moq_ffi package: embedded
// relay, publisher, subscriber lambda; checks every object arrived in order.
#include "moq_ffi.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

int main() {
    if (!moq::abi_compatible()) return 1;
    try {
        moq::Relay relay = moq::Relay::start();
        moq::ClientConfig config;
        config.tls_fingerprint_sha256 = std::string(relay.fingerprint());
        moq::Client pub_client = moq::Client::create(config);
        moq::Client sub_client = moq::Client::create(config);
        pub_client.connect(relay.url());
        sub_client.connect(relay.url());
        moq::Publisher pub = pub_client.publish("consumer-cpp", "t");
        std::atomic<int> received{0}, in_order{0};
        std::atomic<bool> live{false};
        moq::Subscriber sub = sub_client.subscribe(
            "consumer-cpp", "t",
            [&](const moq::Object &o) {
                if (moq::as_string(o.data) == "object " + std::to_string(received.load())) in_order++;
                received++;
            },
            [&](const moq::Status &s) { live = live || s.status == MOQ_SUBSCRIPTION_SUBSCRIBED; });
        for (int i = 0; i < 500 && !live; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        for (int i = 0; i < 100; i++) pub.publish("object " + std::to_string(i));
        for (int i = 0; i < 1000 && received < 100; i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        bool ok = received == 100 && in_order == 100;
        std::printf("consumer (c++ wrapper): %s, %d/100 objects in order\n", ok ? "OK" : "FAILED", in_order.load());
        return ok ? 0 : 1;
    } catch (const moq::Error &e) {
        std::fprintf(stderr, "consumer (c++): %s (code %d)\n", e.what(), static_cast<int>(e.code()));
        return 1;
    }
}
