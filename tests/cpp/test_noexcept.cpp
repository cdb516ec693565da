// test_noexcept.cpp - moq_ffi.hpp in a build without C++ exceptions (-fno-exceptions, as Unreal
// Engine builds by default): only the std::error_code overloads are used. Round trip through the
// embedded relay, error codes for bad input, a subscriber destroyed in its own callback.
// Closing line: "N passed, M failed". Built and run by scripts/cpp-tests.sh.
#include "moq_ffi.hpp"
#include "check.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "build this test with -fno-exceptions"
#endif


template <typename Pred> static bool wait_until(Pred pred, int ms) {
    for (int i = 0; i < ms / 5; i++) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
}

int main() {
    std::error_code ec;
    {
        moq::Relay relay = moq::Relay::start("127.0.0.1:0", ec);
        CHECK(relay && !ec, "relay: " + ec.message());
        moq::ClientConfig config;
        config.tls_fingerprint_sha256 = std::string(relay.fingerprint());
        moq::Client client = moq::Client::create(config, ec);
        CHECK(client && !ec, "create: " + ec.message());
        CHECK(!client.connect("bogus", {}, ec) && ec == moq::errc::invalid_argument, "bad url: " + ec.message());
        std::atomic<int> states{0};
        CHECK(client.connect(relay.url(), [&](MoqConnectionState) { states++; }, ec) && !ec, "connect: " + ec.message());

        moq::Publisher pub = client.publish("noexc", "t", moq::publisher_options(), ec);
        CHECK(pub && !ec, "publish: " + ec.message());
        std::atomic<int> got{0};
        std::atomic<bool> live{false};
        auto holder = std::make_unique<moq::Subscriber>();
        *holder = client.subscribe(
            "noexc", "t",
            [&](const moq::Object &o) {
                if (moq::as_string(o.data) == "stop") holder->reset(); // destroyed in its own callback
                got++;
            },
            [&](const moq::Status &s) { live = live || s.status == MOQ_SUBSCRIPTION_SUBSCRIBED; },
            moq::subscribe_options(), ec);
        CHECK(*holder && !ec, "subscribe: " + ec.message());
        CHECK(wait_until([&] { return live.load(); }, 5000), "SUBSCRIBED");
        for (int i = 0; i < 20; i++) CHECK(pub.publish(moq::as_bytes("x"), MOQ_DELIVERY_STREAM, ec), ec.message());
        CHECK(pub.publish(moq::as_bytes("stop"), MOQ_DELIVERY_STREAM, ec), ec.message());
        for (int i = 0; i < 5; i++) pub.publish(moq::as_bytes("after"), MOQ_DELIVERY_STREAM, ec);
        CHECK(wait_until([&] { return got.load() == 21; }, 5000), "got " + std::to_string(got.load()));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        CHECK(got.load() == 21 && !*holder, "no callback after the self-destroy: " + std::to_string(got.load()));
        std::uint64_t group = 0;
        CHECK(pub.begin_group(group, ec) && pub.publish_object(moq::as_bytes("g"), 0, ec) && pub.end_group(ec), ec.message());
        CHECK(pub.finish(ec), "finish: " + ec.message());
        moq::Publisher empty;
        CHECK(!empty.finish(ec) && ec == moq::errc::invalid_handle, "finish on empty: " + ec.message());
        CHECK(client.disconnect(ec), "disconnect: " + ec.message());
        CHECK(states.load() > 0, "state callbacks");
    }
    MoqResult r = moq_shutdown(0);
    CHECK(r.code == MOQ_OK, "shutdown");
    moq_free_str(r.message);
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
