// test_wrapper.cpp - tests of include/moq_ffi.hpp (the C++17 RAII wrapper) against the embedded
// relay on loopback. Run by scripts/cpp-tests.sh under ASan+UBSan and under valgrind.
//
// Sections: 1 basics (version, ABI, move-only types), 2 errors (exceptions and error_code),
// 3 pub/sub round trip (lambdas, groups, ENDED), 4 throwing callbacks, 5 wrappers destroyed in
// their own callbacks (subscriber, client), 6 moves of live objects, 7 catalogs and announcements.
// Closing line: "N passed, M failed". MOQ_TEST_TIME_SCALE stretches every wait (valgrind).
#include "moq_ffi.hpp"
#include "check.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>


using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

static double time_scale() {
    const char *s = std::getenv("MOQ_TEST_TIME_SCALE");
    double v = s ? std::atof(s) : 1.0;
    return v >= 1.0 ? v : 1.0;
}

static std::chrono::milliseconds scaled(int ms) {
    return std::chrono::milliseconds(static_cast<long long>(ms * time_scale()));
}

// Waits (bounded) until pred() is true; polls every 5 ms.
template <typename Pred> static bool wait_until(Pred pred, std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    while (!pred()) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

static moq::Client connect_to(const moq::Relay &relay) {
    moq::ClientConfig config;
    config.connect_timeout_ms = static_cast<std::uint32_t>(scaled(5000).count());
    config.tls_fingerprint_sha256 = std::string(relay.fingerprint());
    moq::Client client = moq::Client::create(config);
    client.connect(relay.url());
    return client;
}

// What a subscriber saw, filled on the callback thread.
struct Seen {
    std::mutex mutex;
    std::vector<std::string> payloads;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ids;
    std::vector<MoqSubscriptionStatus> statuses;
    std::atomic<int> objects{0};
    std::atomic<bool> subscribed{false};

    moq::ObjectHandler objects_handler() {
        return [this](const moq::Object &o) {
            std::lock_guard<std::mutex> lock(mutex);
            payloads.emplace_back(moq::as_string(o.data));
            ids.emplace_back(o.group_id, o.object_id);
            objects++;
        };
    }
    moq::StatusHandler status_handler() {
        return [this](const moq::Status &s) {
            std::lock_guard<std::mutex> lock(mutex);
            statuses.push_back(s.status);
            if (s.status == MOQ_SUBSCRIPTION_SUBSCRIBED) subscribed = true;
        };
    }
    bool has_status(MoqSubscriptionStatus st) {
        std::lock_guard<std::mutex> lock(mutex);
        for (auto s : statuses)
            if (s == st) return true;
        return false;
    }
};

// ---------------------------------------------------------------------------------------------
static void test_basics() {
    std::printf("-- 1. basics\n");
    CHECK(moq::version().rfind("moq-ffi ", 0) == 0, std::string(moq::version()));
    CHECK(moq::abi_compatible(), "library refused by MOQ_FFI_ABI_COMPATIBLE");
    CHECK(moq_abi_version() == MOQ_FFI_ABI_VERSION, "abi version");
    static_assert(!std::is_copy_constructible<moq::Client>::value, "Client is move-only");
    static_assert(!std::is_copy_assignable<moq::Client>::value, "Client is move-only");
    static_assert(!std::is_copy_constructible<moq::Publisher>::value, "Publisher is move-only");
    static_assert(!std::is_copy_constructible<moq::Subscriber>::value, "Subscriber is move-only");
    static_assert(!std::is_copy_constructible<moq::Relay>::value, "Relay is move-only");
    static_assert(std::is_nothrow_move_constructible<moq::Client>::value, "noexcept move");
    static_assert(std::is_nothrow_move_assignable<moq::Subscriber>::value, "noexcept move");
    static_assert(std::is_nothrow_move_constructible<moq::Publisher>::value, "noexcept move");
    static_assert(std::is_nothrow_move_assignable<moq::Relay>::value, "noexcept move");
    moq::Client empty;
    CHECK(!empty, "default Client is empty");
    CHECK(!empty.connected(), "empty client is not connected");
    std::error_code ec = moq::errc::not_found;
    CHECK(ec.category().name() == std::string("moq") && ec.message() == "not found", ec.message());
    CHECK(ec == moq::make_error_code(moq::errc::not_found), "errc comparison");
}

static void test_errors(const moq::Relay &relay) {
    std::printf("-- 2. errors: exceptions and error_code\n");
    // Two TLS options at once is an invalid configuration.
    moq::ClientConfig bad;
    bad.tls_insecure_skip_verify = true;
    bad.tls_fingerprint_sha256 = std::string(relay.fingerprint());
    bool threw = false;
    try {
        moq::Client c = moq::Client::create(bad);
    } catch (const moq::Error &e) {
        threw = true;
        CHECK(e.code() == MOQ_ERROR_INVALID_ARGUMENT, "code " + std::to_string(e.code()));
        CHECK(e.error_code() == moq::errc::invalid_argument, e.error_code().message());
        CHECK(!e.message().empty(), "empty message");
    }
    CHECK(threw, "create with two TLS options did not throw");
    std::error_code ec;
    moq::Client c = moq::Client::create(bad, ec);
    CHECK(!c && ec == moq::errc::invalid_argument, "ec create: " + ec.message());
    CHECK(!moq::last_error().empty(), "last_error after ec failure");
    // max_streams reaches the library: below its range is refused.
    moq::ClientConfig few;
    few.tls_fingerprint_sha256 = std::string(relay.fingerprint());
    few.max_streams = 15;
    moq::Client refused = moq::Client::create(few, ec);
    CHECK(!refused && ec == moq::errc::invalid_argument, "max_streams 15: " + ec.message());
    CHECK(moq::last_error().find("max_streams") != std::string::npos, "max_streams 15: " + moq::last_error());

    // Connecting to a port nobody listens on fails (CONNECTION_FAILED or TIMEOUT).
    moq::ClientConfig config;
    config.connect_timeout_ms = static_cast<std::uint32_t>(scaled(1500).count());
    config.tls_fingerprint_sha256 = std::string(relay.fingerprint());
    moq::Client lonely = moq::Client::create(config);
    threw = false;
    try {
        lonely.connect("https://127.0.0.1:9");
    } catch (const moq::Error &e) {
        threw = e.code() == MOQ_ERROR_CONNECTION_FAILED || e.code() == MOQ_ERROR_TIMEOUT;
        CHECK(threw, std::string("connect error: ") + e.what());
    }
    CHECK(threw, "connect to a closed port did not throw");
    CHECK(!lonely.connect("not a url", {}, ec) && ec == moq::errc::invalid_argument, "ec connect: " + ec.message());

    // Publishing through an empty Publisher: INVALID_HANDLE, as exception and as error_code.
    moq::Publisher none;
    threw = false;
    try {
        none.publish("x");
    } catch (const moq::Error &e) {
        threw = e.code() == MOQ_ERROR_INVALID_HANDLE;
    }
    CHECK(threw, "publish on an empty Publisher");
    CHECK(!none.publish(moq::as_bytes("x"), MOQ_DELIVERY_STREAM, ec) && ec == moq::errc::invalid_handle, ec.message());
    // Invalid names are refused before anything is created.
    moq::Client ok = connect_to(relay);
    moq::Publisher p = ok.publish("", "track", moq::publisher_options(), ec);
    CHECK(!p && ec == moq::errc::invalid_argument, "empty namespace: " + ec.message());
    moq::Subscriber s = ok.subscribe("cpp", "", [](const moq::Object &) {}, {}, moq::subscribe_options(), ec);
    CHECK(!s && ec == moq::errc::invalid_argument, "empty track: " + ec.message());
}

static void test_roundtrip(const moq::Relay &relay) {
    std::printf("-- 3. pub/sub round trip\n");
    moq::Client pub_client = connect_to(relay);
    moq::Client sub_client = connect_to(relay);
    CHECK(pub_client.connected() && sub_client.connected(), "connected");
    CHECK(!pub_client.protocol_version().empty(), "protocol version");
    CHECK(pub_client.transport() == "quic", pub_client.transport());
    CHECK(pub_client.last_error().empty(), pub_client.last_error());

    moq::Publisher pub = pub_client.publish("cpp/rt", "objects");
    Seen seen;
    moq::Subscriber sub = sub_client.subscribe("cpp/rt", "objects", seen.objects_handler(), seen.status_handler());
    CHECK(wait_until([&] { return seen.subscribed.load(); }, scaled(5000)), "SUBSCRIBED");
    const std::size_t n = 200;
    for (std::size_t i = 0; i < n; i++) pub.publish("object " + std::to_string(i));
    // Three objects in one group.
    std::uint64_t g = pub.begin_group();
    std::vector<std::uint8_t> raw = {'g', '0'};
    pub.publish_object(raw, 1);
    raw[1] = '1';
    pub.publish_object(raw, 2);
    raw[1] = '2';
    pub.publish_object(raw, 3);
    pub.end_group();
    CHECK(wait_until([&] { return static_cast<std::size_t>(seen.objects.load()) == n + 3; }, scaled(10000)),
          "objects: " + std::to_string(seen.objects.load()));
    {
        std::lock_guard<std::mutex> lock(seen.mutex);
        bool in_order = seen.payloads.size() == n + 3;
        for (std::size_t i = 0; in_order && i < n; i++) in_order = seen.payloads[i] == "object " + std::to_string(i);
        CHECK(in_order, "payloads out of order or wrong");
        if (seen.ids.size() == n + 3) {
            CHECK(seen.payloads[n] == "g0" && seen.payloads[n + 2] == "g2", "group payloads");
            CHECK(seen.ids[n].first == g && seen.ids[n + 2].first == g, "group id");
            CHECK(seen.ids[n].second == 0 && seen.ids[n + 1].second == 1 && seen.ids[n + 2].second == 2, "object ids");
        }
    }
    MoqStats st = pub.stats();
    CHECK(st.objects_sent >= n, "publisher stats " + std::to_string(st.objects_sent));
    CHECK(sub.stats().objects_received >= n, "subscriber stats");
    CHECK(sub.subscribed(), "subscribed()");
    pub.finish();
    CHECK(wait_until([&] { return seen.has_status(MOQ_SUBSCRIPTION_ENDED); }, scaled(5000)), "ENDED after finish");
}

static void test_throwing_callbacks(const moq::Relay &relay) {
    std::printf("-- 4. callbacks that throw\n");
    std::atomic<int> handled{0};
    std::atomic<int> std_errors{0};
    moq::set_callback_exception_handler([&](std::exception_ptr e, const char *where) {
        handled++;
        try {
            std::rethrow_exception(e);
        } catch (const std::runtime_error &err) {
            if (std::string(err.what()) == "boom" && std::string(where) == "on_object") std_errors++;
        } catch (...) {
        }
    });
    std::uint64_t before = moq::callback_exception_count();
    moq::Client pub_client = connect_to(relay);
    moq::Client sub_client = connect_to(relay);
    moq::Publisher pub = pub_client.publish("cpp/throw", "t");
    std::atomic<int> calls{0};
    std::atomic<bool> live{false};
    moq::Subscriber sub = sub_client.subscribe(
        "cpp/throw", "t",
        [&](const moq::Object &o) {
            calls++;
            if (o.data.size() % 2 == 0) throw std::runtime_error("boom");
            throw 42; // not even a std::exception
        },
        [&](const moq::Status &s) {
            if (s.status == MOQ_SUBSCRIPTION_SUBSCRIBED) live = true;
            if (s.status == MOQ_SUBSCRIPTION_SUBSCRIBED) throw std::logic_error("status throws too");
        });
    CHECK(wait_until([&] { return live.load(); }, scaled(5000)), "SUBSCRIBED");
    for (int i = 0; i < 10; i++) pub.publish(std::string(static_cast<std::size_t>(i % 2 == 0 ? 2 : 1), 'x'));
    CHECK(wait_until([&] { return calls.load() == 10; }, scaled(5000)), "calls " + std::to_string(calls.load()));
    CHECK(wait_until([&] { return handled.load() == 11; }, scaled(2000)), "handled " + std::to_string(handled.load()));
    CHECK(std_errors.load() == 5, "runtime_error seen by the handler: " + std::to_string(std_errors.load()));
    CHECK(moq::callback_exception_count() - before == 11, "callback_exception_count");
    // A handler that throws itself is contained as well.
    moq::set_callback_exception_handler([](std::exception_ptr, const char *) { throw std::runtime_error("handler"); });
    pub.publish("xx");
    CHECK(wait_until([&] { return calls.load() == 11; }, scaled(5000)), "after throwing handler");
    moq::set_callback_exception_handler({});
    // The library still works after all that.
    Seen seen;
    moq::Subscriber sub2 = sub_client.subscribe("cpp/throw", "t", seen.objects_handler(), seen.status_handler());
    CHECK(wait_until([&] { return seen.subscribed.load(); }, scaled(5000)), "second SUBSCRIBED");
    pub.publish("after");
    CHECK(wait_until([&] { return seen.objects.load() == 1; }, scaled(5000)), "object after exceptions");
}

static void test_destroy_in_callback(const moq::Relay &relay) {
    std::printf("-- 5. wrappers destroyed inside their own callbacks\n");
    moq::Client pub_client = connect_to(relay);
    moq::Client sub_client = connect_to(relay);
    moq::Publisher pub = pub_client.publish("cpp/self", "t");

    // A subscriber destroying itself on its first object; the lambda's captures stay usable.
    auto holder = std::make_unique<moq::Subscriber>();
    std::atomic<int> calls{0};
    std::atomic<bool> live{false}, after_reset{false};
    auto marker = std::make_shared<int>(7); // captured by value: must survive the reset
    *holder = sub_client.subscribe(
        "cpp/self", "t",
        [&, marker](const moq::Object &) {
            calls++;
            holder->reset(); // destroys this subscription (and frees the lambda after return)
            after_reset = (*marker == 7);
        },
        [&](const moq::Status &s) {
            if (s.status == MOQ_SUBSCRIPTION_SUBSCRIBED) live = true;
        });
    CHECK(wait_until([&] { return live.load(); }, scaled(5000)), "SUBSCRIBED");
    for (int i = 0; i < 20; i++) pub.publish("x");
    CHECK(wait_until([&] { return calls.load() >= 1; }, scaled(5000)), "first object");
    std::this_thread::sleep_for(scaled(300));
    CHECK(calls.load() == 1, "callbacks after self-destroy: " + std::to_string(calls.load()));
    CHECK(after_reset.load(), "captures usable after reset inside the callback");
    CHECK(!*holder, "holder empty");
    holder.reset(); // destroying the already-reset wrapper is a no-op

    // Destroying the whole unique_ptr<Subscriber> (not just reset()) inside the callback.
    auto owned = std::make_unique<moq::Subscriber>();
    std::atomic<int> calls2{0};
    std::atomic<bool> live2{false};
    *owned = sub_client.subscribe(
        "cpp/self", "t",
        [&](const moq::Object &) {
            calls2++;
            owned.reset();
        },
        [&](const moq::Status &s) {
            if (s.status == MOQ_SUBSCRIPTION_SUBSCRIBED) live2 = true;
        });
    CHECK(wait_until([&] { return live2.load(); }, scaled(5000)), "SUBSCRIBED 2");
    for (int i = 0; i < 20; i++) pub.publish("y");
    CHECK(wait_until([&] { return calls2.load() >= 1; }, scaled(5000)), "first object 2");
    std::this_thread::sleep_for(scaled(300));
    CHECK(calls2.load() == 1 && !owned, "callbacks after delete inside callback: " + std::to_string(calls2.load()));

    // A client destroyed inside its own connection-state callback (its relay goes away).
    moq::Relay own = moq::Relay::start();
    auto client = std::make_unique<moq::Client>();
    std::atomic<int> states{0};
    std::atomic<bool> destroyed{false};
    moq::ClientConfig config;
    config.connect_timeout_ms = static_cast<std::uint32_t>(scaled(5000).count());
    config.tls_fingerprint_sha256 = std::string(own.fingerprint());
    *client = moq::Client::create(config);
    client->connect(own.url(), [&](MoqConnectionState s) {
        states++;
        if (s == MOQ_STATE_DISCONNECTED || s == MOQ_STATE_FAILED) {
            client.reset();
            destroyed = true;
        }
    });
    own.stop();
    CHECK(wait_until([&] { return destroyed.load(); }, scaled(10000)), "client destroyed in its state callback");
    int seen_states = states.load();
    std::this_thread::sleep_for(scaled(200));
    CHECK(states.load() == seen_states, "state callbacks after destroy");
}

static void test_moves(const moq::Relay &relay) {
    std::printf("-- 6. moving live objects\n");
    moq::Client pub_client = connect_to(relay);
    moq::Client a = connect_to(relay);
    moq::Client b(std::move(a)); // move-construct a connected client
    CHECK(!a && b && b.connected(), "moved client");
    moq::Publisher p1 = pub_client.publish("cpp/move", "t");
    moq::Publisher p2;
    p2 = std::move(p1);
    CHECK(!p1 && p2, "moved publisher");
    Seen seen;
    moq::Subscriber s1 = b.subscribe("cpp/move", "t", seen.objects_handler(), seen.status_handler());
    moq::Subscriber s2(std::move(s1));
    std::vector<moq::Subscriber> many;
    many.push_back(std::move(s2)); // and into a container
    many.reserve(16);              // reallocation moves it again
    CHECK(!s1 && !s2 && many[0], "moved subscriber");
    CHECK(wait_until([&] { return seen.subscribed.load(); }, scaled(5000)), "SUBSCRIBED after moves");
    for (int i = 0; i < 5; i++) p2.publish("m" + std::to_string(i));
    CHECK(wait_until([&] { return seen.objects.load() == 5; }, scaled(5000)), "objects after moves");
    moq::Relay r1 = moq::Relay::start();
    moq::Relay r2;
    std::string url(r1.url());
    r2 = std::move(r1);
    CHECK(!r1 && r2 && r2.url() == url, "moved relay");
    // Self move-assignment keeps the object.
    moq::Subscriber &same = many[0];
    many[0] = std::move(same);
    CHECK(many[0], "self move-assign");
}

static void test_catalog_and_announce(const moq::Relay &relay) {
    std::printf("-- 7. catalogs and announcements\n");
    moq::Client pub_client = connect_to(relay);
    moq::Client sub_client = connect_to(relay);
    std::mutex m;
    std::vector<std::string> announced;
    sub_client.on_announces("cpp-ann", [&](std::string_view ns, bool active) {
        std::lock_guard<std::mutex> lock(m);
        announced.push_back(std::string(ns) + (active ? "+" : "-"));
    });
    moq::Publisher cat = pub_client.publish("cpp-ann/show", "catalog.json");
    moq::CatalogTrack video;
    video.name = "video";
    video.codec = "avc1.64001f";
    video.width = 1280;
    video.height = 720;
    moq::CatalogTrack audio;
    audio.name = "audio";
    audio.codec = "opus";
    audio.sample_rate = 48000;
    cat.publish_catalog({video, audio});
    std::vector<std::string> names;
    std::uint32_t width = 0;
    std::atomic<int> catalogs{0};
    MoqSubscribeOptions opts = moq::subscribe_options();
    opts.start = MOQ_START_LATEST_GROUP;
    moq::Subscriber cs = sub_client.subscribe_catalog(
        "cpp-ann/show", "catalog.json",
        [&](const std::vector<moq::TrackInfo> &tracks) {
            std::lock_guard<std::mutex> lock(m);
            names.clear();
            for (const auto &t : tracks) {
                names.emplace_back(t.name);
                if (t.name == "video") width = t.width;
            }
            catalogs++;
        },
        {}, opts);
    CHECK(wait_until([&] { return catalogs.load() >= 1; }, scaled(5000)), "catalog arrived");
    {
        std::lock_guard<std::mutex> lock(m);
        CHECK(names.size() == 2 && names[0] == "video" && names[1] == "audio" && width == 1280, "catalog contents");
    }
    CHECK(cs.catalog_json().find("avc1.64001f") != std::string::npos, cs.catalog_json());
    CHECK(wait_until(
              [&] {
                  std::lock_guard<std::mutex> lock(m);
                  for (auto &a : announced)
                      if (a == "cpp-ann/show+") return true;
                  return false;
              },
              scaled(5000)),
          "announcement seen");
    sub_client.stop_announces();
}

int main() {
    auto start = Clock::now();
    test_basics();
    {
        moq::Relay relay = moq::Relay::start("127.0.0.1:0");
        CHECK(relay && !relay.url().empty() && relay.fingerprint().size() == 64, "relay started");
        std::printf("relay %s\n", std::string(relay.url()).c_str());
        test_errors(relay);
        test_roundtrip(relay);
        test_throwing_callbacks(relay);
        test_destroy_in_callback(relay);
        test_moves(relay);
        test_catalog_and_announce(relay);
    }
    // Join every library thread so leak checkers see a quiet process.
    MoqResult r = moq_shutdown(0);
    CHECK(r.code == MOQ_OK, "moq_shutdown");
    moq_free_str(r.message);
    std::printf("elapsed %.1f s\n", std::chrono::duration<double>(Clock::now() - start).count());
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
