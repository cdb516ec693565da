/*
 * moq_ffi.hpp - header-only C++17 wrapper of moq_ffi.h (Media over QUIC).
 *
 *   moq::Relay       embedded relay (moq_relay_*)
 *   moq::Client      a connection to a relay (moq_client_*, moq_connect*)
 *   moq::Publisher   one track being published (moq_create_publisher_opts, moq_publish_*)
 *   moq::Subscriber  one subscription, catalog subscription or group fetch
 *
 * Rules:
 *  - Every class is move-only and owns its C handle: the destructor releases it (moq_*_destroy /
 *    moq_relay_stop). A moved-from or default-constructed object is empty (`!obj`).
 *  - Errors: the plain functions throw moq::Error (code() + message()); every fallible call also
 *    has a non-throwing overload taking `std::error_code&` (category moq::category(), values
 *    moq::errc); after such a failure moq::last_error() has the message. Without C++
 *    exceptions (-fno-exceptions) the throwing functions abort instead: use the overloads.
 *  - Callbacks are std::function / lambdas. They run on the library's callback thread, one at a
 *    time. Each is called through a trampoline that catches every exception (none ever
 *    reaches the library); a caught exception goes to the handler set with
 *    moq::set_callback_exception_handler (default: ignored, counted by
 *    moq::callback_exception_count()).
 *  - The std::function lives in a heap context owned by the wrapper and freed after the C
 *    destroy has returned (the library guarantees no callback of that object runs afterwards).
 *    Destroying a wrapper inside its own callback is allowed: the C destroy returns at once, no
 *    further callback follows, and the context (with the running lambda) is freed when the
 *    callback returns. Code after the destroy in that callback must not touch the destroyed
 *    wrapper, but may still use the lambda's own captures.
 *  - Data handed to callbacks (moq::Bytes, std::string_view) is valid only during the call.
 *  - std::string_view arguments are copied into NUL-terminated strings before the C call.
 */
#ifndef MOQ_FFI_HPP
#define MOQ_FFI_HPP

#include "moq_ffi.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>
#if defined(__has_include)
#if __has_include(<version>)
#include <version>
#endif
#endif
#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
#include <span>
#endif
#include <cstdlib>

// Builds without C++ exceptions (-fno-exceptions, e.g. Unreal Engine's default): the
// std::error_code overloads work as usual; the throwing functions call std::abort() instead of
// throwing, so use the error_code overloads there.
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define MOQ_HPP_TRY try
#define MOQ_HPP_CATCH_ALL catch (...)
#define MOQ_HPP_THROW(error) throw error
#else
#define MOQ_HPP_TRY if (true)
#define MOQ_HPP_CATCH_ALL else
#define MOQ_HPP_THROW(error) (static_cast<void>(error), std::abort())
#endif

namespace moq {

// ---------------------------------------------------------------------------------------------
// Errors

/** The library's result codes as a std::error_code enum (values equal MoqResultCode). */
enum class errc : int {
    ok = MOQ_OK,
    invalid_argument = MOQ_ERROR_INVALID_ARGUMENT,
    connection_failed = MOQ_ERROR_CONNECTION_FAILED,
    not_connected = MOQ_ERROR_NOT_CONNECTED,
    timeout = MOQ_ERROR_TIMEOUT,
    internal = MOQ_ERROR_INTERNAL,
    unsupported = MOQ_ERROR_UNSUPPORTED,
    buffer_too_small = MOQ_ERROR_BUFFER_TOO_SMALL,
    invalid_handle = MOQ_ERROR_INVALID_HANDLE,
    panic = MOQ_ERROR_PANIC,
    refused = MOQ_ERROR_REFUSED,
    not_found = MOQ_ERROR_NOT_FOUND,
    closed = MOQ_ERROR_CLOSED,
    invalid_state = MOQ_ERROR_INVALID_STATE,
    would_block = MOQ_ERROR_WOULD_BLOCK,
};

namespace detail {
class Category final : public std::error_category {
  public:
    const char *name() const noexcept override { return "moq"; }
    std::string message(int code) const override {
        switch (static_cast<errc>(code)) {
        case errc::ok: return "ok";
        case errc::invalid_argument: return "invalid argument";
        case errc::connection_failed: return "connection failed";
        case errc::not_connected: return "not connected";
        case errc::timeout: return "timeout";
        case errc::internal: return "internal error";
        case errc::unsupported: return "unsupported";
        case errc::buffer_too_small: return "buffer too small";
        case errc::invalid_handle: return "invalid handle";
        case errc::panic: return "panic inside the library";
        case errc::refused: return "refused";
        case errc::not_found: return "not found";
        case errc::closed: return "closed";
        case errc::invalid_state: return "invalid state";
        case errc::would_block: return "would block";
        }
        return "unknown moq error " + std::to_string(code);
    }
};
} // namespace detail

/** The error category of moq::errc. */
inline const std::error_category &category() noexcept {
    static const detail::Category instance;
    return instance;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

} // namespace moq

template <> struct std::is_error_code_enum<moq::errc> : std::true_type {};

namespace moq {

/** A failed library call: the MoqResultCode and the library's message. */
class Error : public std::runtime_error {
  public:
    Error(MoqResultCode code, const std::string &message)
        : std::runtime_error(message.empty() ? category().message(code) : message), code_(code) {}
    /** The C result code. */
    MoqResultCode code() const noexcept { return code_; }
    /** The same code as a std::error_code. */
    std::error_code error_code() const noexcept { return make_error_code(static_cast<errc>(code_)); }
    /** The library's message (what()). */
    std::string message() const { return what(); }

  private:
    MoqResultCode code_;
};

/** The message of the last failing call on this thread ("" if none), see moq_last_error(). */
inline std::string last_error() {
    const char *m = moq_last_error();
    return m ? std::string(m) : std::string();
}

/** The library version string (moq_version()). */
inline std::string_view version() noexcept {
    const char *v = moq_version();
    return v ? std::string_view(v) : std::string_view();
}

/** True when the loaded library serves the header this program was compiled against. */
inline bool abi_compatible() noexcept { return MOQ_FFI_ABI_COMPATIBLE(moq_abi_version()); }

/** Bytes valid for the duration of a callback: std::span<const uint8_t> under C++20. */
#if defined(__cpp_lib_span) && __cpp_lib_span >= 202002L
using Bytes = std::span<const std::uint8_t>;
#else
class Bytes {
  public:
    constexpr Bytes() noexcept = default;
    constexpr Bytes(const std::uint8_t *data, std::size_t size) noexcept : data_(data), size_(size) {}
    /** Any contiguous container of uint8_t (std::vector, std::array, ...). */
    template <typename C, typename = std::enable_if_t<std::is_convertible<decltype(std::declval<const C &>().data()),
                                                                         const std::uint8_t *>::value>>
    Bytes(const C &c) noexcept : data_(c.data()), size_(c.size()) {}
    constexpr const std::uint8_t *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const std::uint8_t *begin() const noexcept { return data_; }
    constexpr const std::uint8_t *end() const noexcept { return data_ + size_; }
    constexpr std::uint8_t operator[](std::size_t i) const noexcept { return data_[i]; }

  private:
    const std::uint8_t *data_ = nullptr;
    std::size_t size_ = 0;
};
#endif

/** Bytes of a string (no copy). */
inline Bytes as_bytes(std::string_view s) noexcept {
    return Bytes(reinterpret_cast<const std::uint8_t *>(s.data()), s.size());
}

/** The bytes as a std::string_view (no copy). */
inline std::string_view as_string(Bytes b) noexcept {
    return std::string_view(reinterpret_cast<const char *>(b.data()), b.size());
}

namespace detail {

/** Throws moq::Error for a failed MoqResult; frees its message either way. */
inline void check(MoqResult r) {
    if (r.code == MOQ_OK) {
        moq_free_str(r.message);
        return;
    }
    std::string message = r.message ? r.message : "";
    moq_free_str(r.message);
    MOQ_HPP_THROW(Error(r.code, message));
}

/** Stores a MoqResult in `ec` (cleared on success); frees its message. Never throws. */
inline bool check(MoqResult r, std::error_code &ec) noexcept {
    moq_free_str(r.message);
    ec = make_error_code(static_cast<errc>(r.code));
    return r.code == MOQ_OK;
}

/** Throws the last error of this thread (after a NULL/false return). */
[[noreturn]] inline void throw_last_error() {
    MoqResultCode code = moq_last_error_code();
    MOQ_HPP_THROW(Error(code == MOQ_OK ? MOQ_ERROR_INTERNAL : code, last_error()));
}

inline std::error_code last_error_code() noexcept {
    MoqResultCode code = moq_last_error_code();
    return make_error_code(static_cast<errc>(code == MOQ_OK ? MOQ_ERROR_INTERNAL : code));
}

/** A NUL-terminated copy of a string_view (the C API needs one). */
inline std::string cstr(std::string_view s) { return std::string(s); }

/** Reads one of the buffer-filling string getters, growing the buffer when it is too small. */
template <typename Getter> std::string read_string(Getter getter) {
    std::vector<char> buf(256);
    for (int attempt = 0; attempt < 8; ++attempt) {
        MoqResult r = getter(buf.data(), buf.size());
        if (r.code == MOQ_ERROR_BUFFER_TOO_SMALL) {
            moq_free_str(r.message);
            buf.resize(buf.size() * 4);
            continue;
        }
        check(r);
        return std::string(buf.data());
    }
    MOQ_HPP_THROW(Error(MOQ_ERROR_BUFFER_TOO_SMALL, "string longer than the wrapper's limit"));
}

// --- callback plumbing ----------------------------------------------------------------------

/** What happens to an exception a callback threw. */
struct ExceptionSink {
    std::mutex mutex;
    std::function<void(std::exception_ptr, const char *)> handler;
    std::atomic<std::uint64_t> count{0};
};

inline ExceptionSink &exception_sink() {
    // Never destroyed: a callback may still run while static destructors do.
    static ExceptionSink *sink = new ExceptionSink();
    return *sink;
}

/** Called inside a catch block of a trampoline; never throws. */
inline void report_callback_exception(const char *where) noexcept {
    MOQ_HPP_TRY {
        ExceptionSink &sink = exception_sink();
        sink.count.fetch_add(1, std::memory_order_relaxed);
        std::function<void(std::exception_ptr, const char *)> handler;
        {
            std::lock_guard<std::mutex> lock(sink.mutex);
            handler = sink.handler;
        }
        if (handler) handler(std::current_exception(), where);
    } MOQ_HPP_CATCH_ALL {
        // The handler threw too: nothing more can be done without crossing into the library.
    }
}

/**
 * Base of every heap context a C callback's user_data points to. The wrapper releases it with
 * release() after the C destroy returned; if that happens inside one of its own callbacks
 * (on the callback thread), it is only marked and the trampoline deletes it on the way out.
 */
struct Context {
    virtual ~Context() = default;
    bool orphaned = false; // touched only on the thread running its callback
};

/** The context whose callback is running on this thread (nullptr outside callbacks). */
inline Context *&current_context() noexcept {
    thread_local Context *current = nullptr;
    return current;
}

inline void release(Context *ctx) noexcept {
    if (!ctx) return;
    if (current_context() == ctx) {
        ctx->orphaned = true; // inside its own callback: the trampoline frees it afterwards
    } else {
        delete ctx; // the C destroy returned: no callback of it runs now or later
    }
}

/** Runs `body` as the callback of `ctx`, catching every exception. */
template <typename Body> void invoke(Context *ctx, const char *where, Body &&body) noexcept {
    Context *previous = current_context();
    current_context() = ctx;
    MOQ_HPP_TRY {
        body();
    } MOQ_HPP_CATCH_ALL {
        report_callback_exception(where);
    }
    current_context() = previous;
    if (ctx->orphaned) delete ctx;
}

} // namespace detail

/**
 * Sets what receives exceptions thrown by callbacks (they never reach the library). The
 * handler runs on the callback thread with the exception and the callback kind ("on_object",
 * "on_status", ...); exceptions it throws are swallowed. Pass {} to ignore them again.
 */
inline void set_callback_exception_handler(std::function<void(std::exception_ptr, const char *)> handler) {
    detail::ExceptionSink &sink = detail::exception_sink();
    std::lock_guard<std::mutex> lock(sink.mutex);
    sink.handler = std::move(handler);
}

/** How many exceptions callbacks have thrown (and the trampolines caught) so far. */
inline std::uint64_t callback_exception_count() noexcept {
    return detail::exception_sink().count.load(std::memory_order_relaxed);
}

/**
 * Routes the library's log events (level <= max_level) to `handler(level, target, message)` on
 * the callback thread; an empty handler restores the default (stderr when MOQ_LOG is set).
 * Handlers are kept for the life of the process (the library may still be delivering to a
 * replaced one).
 */
inline void set_log_handler(MoqLogLevel max_level,
                            std::function<void(MoqLogLevel, std::string_view, std::string_view)> handler) {
    struct LogContext : detail::Context {
        std::function<void(MoqLogLevel, std::string_view, std::string_view)> fn;
    };
    if (!handler) {
        detail::check(moq_set_log_callback(max_level, nullptr, nullptr));
        return;
    }
    auto *ctx = new LogContext(); // intentionally never freed, see above
    ctx->fn = std::move(handler);
    auto trampoline = [](void *ud, MoqLogLevel level, const char *target, const char *message) {
        auto *c = static_cast<LogContext *>(ud);
        detail::invoke(c, "log", [&] {
            c->fn(level, target ? std::string_view(target) : std::string_view(),
                  message ? std::string_view(message) : std::string_view());
        });
    };
    MoqResult r = moq_set_log_callback(max_level, trampoline, ctx);
    if (r.code != MOQ_OK) delete ctx;
    detail::check(r);
}

// ---------------------------------------------------------------------------------------------
// Plain data

/** One received object: where it sits in the track and its payload (valid during the call). */
struct Object {
    std::uint64_t group_id = 0;
    std::uint64_t object_id = 0;
    std::uint64_t timestamp_us = 0; // 0 when the protocol version does not carry it
    MoqDeliveryMode delivery_mode = MOQ_DELIVERY_STREAM;
    std::uint8_t priority = 0;
    Bytes data;
};

/** A subscription status report: SUBSCRIBED, then exactly one terminal status. */
struct Status {
    MoqSubscriptionStatus status = 0; // MOQ_SUBSCRIPTION_*
    std::uint32_t code = 0;           // abort code for ERROR
    std::string_view message;         // valid during the call
    bool terminal() const noexcept { return status != MOQ_SUBSCRIPTION_SUBSCRIBED; }
};

/** One catalog track (strings valid during the callback). */
struct TrackInfo {
    std::string_view name, codec, mime_type, language;
    std::uint32_t width = 0, height = 0, bitrate = 0, sample_rate = 0;
};

/** A track to publish in a catalog (owned strings). */
struct CatalogTrack {
    std::string name, codec, mime_type, language;
    std::uint32_t width = 0, height = 0, bitrate = 0, sample_rate = 0;
};

using ObjectHandler = std::function<void(const Object &)>;
using StatusHandler = std::function<void(const Status &)>;
using CatalogHandler = std::function<void(const std::vector<TrackInfo> &)>;
using StateHandler = std::function<void(MoqConnectionState)>;
using AnnounceHandler = std::function<void(std::string_view ns, bool active)>;

/** The default subscribe options (moq_subscribe_options_default()): adjust fields and pass. */
inline MoqSubscribeOptions subscribe_options() noexcept { return moq_subscribe_options_default(); }

/** The default publisher options (moq_publisher_options_default()). */
inline MoqPublisherOptions publisher_options() noexcept { return moq_publisher_options_default(); }

/** Client configuration; empty strings and zeros mean the library's defaults. */
struct ClientConfig {
    std::uint32_t connect_timeout_ms = 0;
    std::string tls_root_ca_pem;        // replaces the system roots
    std::string tls_fingerprint_sha256; // pins one certificate (e.g. Relay::fingerprint())
    bool tls_insecure_skip_verify = false;
    std::string versions; // e.g. "moq-lite-05,moq-transport-14"
    bool reconnect = false;
    std::uint32_t reconnect_initial_ms = 0;
    std::uint32_t reconnect_max_ms = 0;
    std::string bind_addr;
    std::uint32_t keep_alive_ms = 0;
    std::uint32_t idle_timeout_ms = 0;
    bool poll_events = false;
    std::uint64_t publish_buffer_bytes = 0;
    MoqOverflowPolicy publish_overflow = MOQ_OVERFLOW_DROP_OLDEST;
    bool websocket_disabled = false;
    std::uint32_t websocket_delay_ms = 0;
    std::uint64_t max_streams = 0; // streams (one per group) the relay may have open to us

    /** The C struct; its pointers point into this object (valid while it lives unchanged). */
    MoqClientConfig to_c() const noexcept {
        MoqClientConfig c;
        std::memset(&c, 0, sizeof c);
        c.struct_size = static_cast<std::uint32_t>(sizeof c);
        auto opt = [](const std::string &s) { return s.empty() ? nullptr : s.c_str(); };
        c.connect_timeout_ms = connect_timeout_ms;
        c.tls_root_ca_pem = opt(tls_root_ca_pem);
        c.tls_fingerprint_sha256 = opt(tls_fingerprint_sha256);
        c.tls_insecure_skip_verify = tls_insecure_skip_verify;
        c.versions = opt(versions);
        c.reconnect = reconnect;
        c.reconnect_initial_ms = reconnect_initial_ms;
        c.reconnect_max_ms = reconnect_max_ms;
        c.bind_addr = opt(bind_addr);
        c.keep_alive_ms = keep_alive_ms;
        c.idle_timeout_ms = idle_timeout_ms;
        c.poll_events = poll_events;
        c.publish_buffer_bytes = publish_buffer_bytes;
        c.publish_overflow = publish_overflow;
        c.websocket_disabled = websocket_disabled;
        c.websocket_delay_ms = websocket_delay_ms;
        c.max_streams = max_streams;
        return c;
    }
};

// ---------------------------------------------------------------------------------------------
// Relay

/** An embedded relay (self-signed certificate, anonymous access). Stops on destruction. */
class Relay {
  public:
    Relay() noexcept = default;
    /** Starts a relay on `bind_addr` (port 0 = a free port). Throws moq::Error. */
    static Relay start(std::string_view bind_addr = "127.0.0.1:0") {
        std::error_code ec;
        Relay r = start(bind_addr, ec);
        if (ec) detail::throw_last_error();
        return r;
    }
    /** Non-throwing start: an empty Relay and `ec` set on failure. */
    static Relay start(std::string_view bind_addr, std::error_code &ec) noexcept {
        Relay r;
        MOQ_HPP_TRY {
            r.handle_ = moq_relay_start(detail::cstr(bind_addr).c_str());
        } MOQ_HPP_CATCH_ALL { // std::bad_alloc from the copy
            ec = make_error_code(errc::internal);
            return r;
        }
        if (r.handle_) {
            ec.clear();
        } else {
            ec = detail::last_error_code();
        }
        return r;
    }
    Relay(Relay &&o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
    Relay &operator=(Relay &&o) noexcept {
        if (this != &o) {
            stop();
            handle_ = std::exchange(o.handle_, nullptr);
        }
        return *this;
    }
    Relay(const Relay &) = delete;
    Relay &operator=(const Relay &) = delete;
    ~Relay() { stop(); }

    /** Stops the relay now (blocks at most ~5 s); the destructor does the same. */
    void stop() noexcept {
        if (handle_) moq_relay_stop(std::exchange(handle_, nullptr));
    }
    /** The URL clients connect to (valid while the relay runs). */
    std::string_view url() const noexcept { return view(moq_relay_url(handle_)); }
    /** Hex SHA-256 of its certificate, for ClientConfig::tls_fingerprint_sha256. */
    std::string_view fingerprint() const noexcept { return view(moq_relay_fingerprint(handle_)); }
    explicit operator bool() const noexcept { return handle_ != nullptr; }
    MoqRelay *native() const noexcept { return handle_; }

  private:
    static std::string_view view(const char *s) noexcept { return s ? std::string_view(s) : std::string_view(); }
    MoqRelay *handle_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Publisher

/** One published track. Finishes (ends the track) and releases it on destruction. */
class Publisher {
  public:
    Publisher() noexcept = default;
    explicit Publisher(MoqPublisher *adopt) noexcept : handle_(adopt) {}
    Publisher(Publisher &&o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
    Publisher &operator=(Publisher &&o) noexcept {
        if (this != &o) {
            reset();
            handle_ = std::exchange(o.handle_, nullptr);
        }
        return *this;
    }
    Publisher(const Publisher &) = delete;
    Publisher &operator=(const Publisher &) = delete;
    ~Publisher() { reset(); }

    /** Releases the publisher (moq_publisher_destroy). */
    void reset() noexcept {
        if (handle_) moq_publisher_destroy(std::exchange(handle_, nullptr));
    }

    /** Publishes one object as its own group (moq_publish_data). */
    void publish(Bytes data, MoqDeliveryMode mode = MOQ_DELIVERY_STREAM) {
        detail::check(moq_publish_data(handle_, data.data(), data.size(), mode));
    }
    void publish(std::string_view data, MoqDeliveryMode mode = MOQ_DELIVERY_STREAM) { publish(as_bytes(data), mode); }
    bool publish(Bytes data, MoqDeliveryMode mode, std::error_code &ec) noexcept {
        return detail::check(moq_publish_data(handle_, data.data(), data.size(), mode), ec);
    }

    /** Opens a group and returns its id. */
    std::uint64_t begin_group() {
        std::uint64_t id = 0;
        detail::check(moq_publisher_begin_group(handle_, &id));
        return id;
    }
    bool begin_group(std::uint64_t &id, std::error_code &ec) noexcept {
        return detail::check(moq_publisher_begin_group(handle_, &id), ec);
    }
    /** Appends an object to the open group. */
    void publish_object(Bytes data, std::uint64_t timestamp_us = 0) {
        detail::check(moq_publish_object(handle_, data.data(), data.size(), timestamp_us));
    }
    bool publish_object(Bytes data, std::uint64_t timestamp_us, std::error_code &ec) noexcept {
        return detail::check(moq_publish_object(handle_, data.data(), data.size(), timestamp_us), ec);
    }
    void end_group() { detail::check(moq_publisher_end_group(handle_)); }
    bool end_group(std::error_code &ec) noexcept { return detail::check(moq_publisher_end_group(handle_), ec); }
    /** Ends the track: subscribers get ENDED. */
    void finish() { detail::check(moq_publisher_finish(handle_)); }
    bool finish(std::error_code &ec) noexcept { return detail::check(moq_publisher_finish(handle_), ec); }
    /** Aborts the track with an application error code. */
    void abort(std::uint32_t code) { detail::check(moq_publisher_abort(handle_, code)); }
    bool abort(std::uint32_t code, std::error_code &ec) noexcept {
        return detail::check(moq_publisher_abort(handle_, code), ec);
    }

    /** Publishes a catalog listing `tracks` (MOQ_CATALOG_FORMAT_SEED or _HANG). */
    void publish_catalog(const std::vector<CatalogTrack> &tracks, MoqCatalogFormat format = MOQ_CATALOG_FORMAT_SEED) {
        std::vector<MoqTrackInfo> c(tracks.size());
        auto opt = [](const std::string &s) { return s.empty() ? nullptr : s.c_str(); };
        for (std::size_t i = 0; i < tracks.size(); ++i) {
            c[i].name = tracks[i].name.c_str();
            c[i].codec = opt(tracks[i].codec);
            c[i].mime_type = opt(tracks[i].mime_type);
            c[i].language = opt(tracks[i].language);
            c[i].width = tracks[i].width;
            c[i].height = tracks[i].height;
            c[i].bitrate = tracks[i].bitrate;
            c[i].sample_rate = tracks[i].sample_rate;
        }
        detail::check(moq_publish_catalog(handle_, c.data(), c.size(), format));
    }

    MoqStats stats() const {
        MoqStats s;
        std::memset(&s, 0, sizeof s);
        s.struct_size = static_cast<std::uint32_t>(sizeof s);
        detail::check(moq_publisher_stats(handle_, &s));
        return s;
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    MoqPublisher *native() const noexcept { return handle_; }

  private:
    MoqPublisher *handle_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Subscriber

namespace detail {
struct SubscriberContext : Context {
    ObjectHandler on_object;
    StatusHandler on_status;
    CatalogHandler on_catalog;

    static void object_trampoline(void *ud, const MoqObjectInfo *info, const std::uint8_t *data,
                                  std::size_t len) noexcept {
        auto *ctx = static_cast<SubscriberContext *>(ud);
        invoke(ctx, "on_object", [&] {
            Object o;
            if (info) {
                o.group_id = info->group_id;
                o.object_id = info->object_id;
                o.timestamp_us = info->timestamp_us;
                o.delivery_mode = info->delivery_mode;
                o.priority = info->priority;
            }
            o.data = Bytes(data, len);
            if (ctx->on_object) ctx->on_object(o);
        });
    }
    static void status_trampoline(void *ud, MoqSubscriptionStatus status, std::uint32_t code,
                                  const char *message) noexcept {
        auto *ctx = static_cast<SubscriberContext *>(ud);
        invoke(ctx, "on_status", [&] {
            Status s;
            s.status = status;
            s.code = code;
            s.message = message ? std::string_view(message) : std::string_view();
            if (ctx->on_status) ctx->on_status(s);
        });
    }
    static void catalog_trampoline(void *ud, const MoqTrackInfo *tracks, std::size_t count) noexcept {
        auto *ctx = static_cast<SubscriberContext *>(ud);
        invoke(ctx, "on_catalog", [&] {
            auto sv = [](const char *s) { return s ? std::string_view(s) : std::string_view(); };
            std::vector<TrackInfo> list(count);
            for (std::size_t i = 0; i < count; ++i) {
                list[i].name = sv(tracks[i].name);
                list[i].codec = sv(tracks[i].codec);
                list[i].mime_type = sv(tracks[i].mime_type);
                list[i].language = sv(tracks[i].language);
                list[i].width = tracks[i].width;
                list[i].height = tracks[i].height;
                list[i].bitrate = tracks[i].bitrate;
                list[i].sample_rate = tracks[i].sample_rate;
            }
            if (ctx->on_catalog) ctx->on_catalog(list);
        });
    }
};
} // namespace detail

/** A subscription (or catalog subscription, or group fetch). Stops on destruction. */
class Subscriber {
  public:
    Subscriber() noexcept = default;
    Subscriber(Subscriber &&o) noexcept
        : handle_(std::exchange(o.handle_, nullptr)), ctx_(std::exchange(o.ctx_, nullptr)) {}
    Subscriber &operator=(Subscriber &&o) noexcept {
        if (this != &o) {
            reset();
            handle_ = std::exchange(o.handle_, nullptr);
            ctx_ = std::exchange(o.ctx_, nullptr);
        }
        return *this;
    }
    Subscriber(const Subscriber &) = delete;
    Subscriber &operator=(const Subscriber &) = delete;
    ~Subscriber() { reset(); }

    /**
     * Stops the subscription and releases it (moq_subscriber_destroy). Afterwards no callback
     * of it runs. Allowed inside its own callback.
     */
    void reset() noexcept {
        MoqSubscriber *h = std::exchange(handle_, nullptr);
        detail::SubscriberContext *ctx = std::exchange(ctx_, nullptr);
        if (h) moq_subscriber_destroy(h);
        detail::release(ctx);
    }

    /** True while the subscription is live. */
    bool subscribed() const noexcept { return handle_ && moq_is_subscribed(handle_); }

    MoqStats stats() const {
        MoqStats s;
        std::memset(&s, 0, sizeof s);
        s.struct_size = static_cast<std::uint32_t>(sizeof s);
        detail::check(moq_subscriber_stats(handle_, &s));
        return s;
    }

    /** The raw JSON of the newest catalog (catalog subscriptions only; "" if none yet). */
    std::string catalog_json() const {
        const char *j = moq_catalog_json(handle_); // caller-owned copy
        if (!j) return std::string();
        struct Free {
            const char *p;
            ~Free() { moq_free_str(p); }
        } guard{j};
        return std::string(j);
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    MoqSubscriber *native() const noexcept { return handle_; }

  private:
    friend class Client;
    Subscriber(MoqSubscriber *h, detail::SubscriberContext *ctx) noexcept : handle_(h), ctx_(ctx) {}
    MoqSubscriber *handle_ = nullptr;
    detail::SubscriberContext *ctx_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Client

namespace detail {
struct StateContext : Context {
    StateHandler fn;
    static void trampoline(void *ud, MoqConnectionState state) noexcept {
        auto *ctx = static_cast<StateContext *>(ud);
        invoke(ctx, "on_state", [&] {
            if (ctx->fn) ctx->fn(state);
        });
    }
};
struct AnnounceContext : Context {
    AnnounceHandler fn;
    static void trampoline(void *ud, const char *ns, bool active) noexcept {
        auto *ctx = static_cast<AnnounceContext *>(ud);
        invoke(ctx, "on_announce", [&] {
            if (ctx->fn) ctx->fn(ns ? std::string_view(ns) : std::string_view(), active);
        });
    }
};
/** The callback contexts a client owns, freed after moq_client_destroy returns. */
struct ClientContexts {
    std::mutex mutex;
    std::vector<Context *> contexts;
    void add(Context *c) {
        std::lock_guard<std::mutex> lock(mutex);
        contexts.push_back(c);
    }
    ~ClientContexts() {
        for (Context *c : contexts) release(c);
    }
};
} // namespace detail

/** A client: one session to one relay. Destroying it closes the session. */
class Client {
  public:
    Client() noexcept = default;

    /** Creates a client (not connected yet). Throws moq::Error. */
    static Client create(const ClientConfig &config = ClientConfig()) {
        std::error_code ec;
        Client c = create(config, ec);
        if (ec) detail::throw_last_error();
        return c;
    }
    /** Non-throwing create: an empty Client and `ec` set on failure. */
    static Client create(const ClientConfig &config, std::error_code &ec) noexcept {
        Client c;
        MOQ_HPP_TRY {
            c.contexts_ = std::make_unique<detail::ClientContexts>();
        } MOQ_HPP_CATCH_ALL {
            ec = make_error_code(errc::internal);
            return c;
        }
        MoqClientConfig raw = config.to_c();
        c.handle_ = moq_client_create_ex(&raw);
        if (c.handle_) {
            ec.clear();
        } else {
            ec = detail::last_error_code();
            c.contexts_.reset();
        }
        return c;
    }

    Client(Client &&o) noexcept : handle_(std::exchange(o.handle_, nullptr)), contexts_(std::move(o.contexts_)) {}
    Client &operator=(Client &&o) noexcept {
        if (this != &o) {
            reset();
            handle_ = std::exchange(o.handle_, nullptr);
            contexts_ = std::move(o.contexts_);
        }
        return *this;
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    ~Client() { reset(); }

    /** Destroys the client (moq_client_destroy), then frees its callbacks. */
    void reset() noexcept {
        if (handle_) moq_client_destroy(std::exchange(handle_, nullptr));
        contexts_.reset();
    }

    /** Connects (blocks, bounded by connect_timeout_ms). `on_state` gets later state changes. */
    void connect(std::string_view url, StateHandler on_state = {}) {
        std::error_code ec;
        connect(url, std::move(on_state), ec);
        if (ec) detail::throw_last_error();
    }
    bool connect(std::string_view url, StateHandler on_state, std::error_code &ec) noexcept {
        return connect_impl(url, std::move(on_state), ec, false);
    }
    /** Starts connecting and returns at once; progress arrives through `on_state`. */
    void connect_async(std::string_view url, StateHandler on_state) {
        std::error_code ec;
        connect_impl(url, std::move(on_state), ec, true);
        if (ec) detail::throw_last_error();
    }

    void disconnect() { detail::check(moq_disconnect(handle_)); }
    bool disconnect(std::error_code &ec) noexcept { return detail::check(moq_disconnect(handle_), ec); }
    bool connected() const noexcept { return handle_ && moq_is_connected(handle_); }

    /** Announces a namespace without publishing a track yet. */
    void announce(std::string_view ns) { detail::check(moq_announce_namespace(handle_, detail::cstr(ns).c_str())); }

    /** Creates a publisher for `ns`/`track` (announces `ns`). */
    Publisher publish(std::string_view ns, std::string_view track,
                      const MoqPublisherOptions &options = publisher_options()) {
        std::error_code ec;
        Publisher p = publish(ns, track, options, ec);
        if (ec) detail::throw_last_error();
        return p;
    }
    Publisher publish(std::string_view ns, std::string_view track, const MoqPublisherOptions &options,
                      std::error_code &ec) noexcept {
        MoqPublisher *p = nullptr;
        MOQ_HPP_TRY {
            p = moq_create_publisher_opts(handle_, detail::cstr(ns).c_str(), detail::cstr(track).c_str(), &options);
        } MOQ_HPP_CATCH_ALL {
            ec = make_error_code(errc::internal);
            return Publisher();
        }
        if (p) {
            ec.clear();
        } else {
            ec = detail::last_error_code();
        }
        return Publisher(p);
    }

    /**
     * Subscribes (never blocks on the network). `on_object` gets every object, `on_status`
     * SUBSCRIBED and then one terminal status. Throws moq::Error.
     */
    Subscriber subscribe(std::string_view ns, std::string_view track, ObjectHandler on_object,
                         StatusHandler on_status = {}, const MoqSubscribeOptions &options = subscribe_options()) {
        std::error_code ec;
        Subscriber s = subscribe(ns, track, std::move(on_object), std::move(on_status), options, ec);
        if (ec) detail::throw_last_error();
        return s;
    }
    Subscriber subscribe(std::string_view ns, std::string_view track, ObjectHandler on_object,
                         StatusHandler on_status, const MoqSubscribeOptions &options, std::error_code &ec) noexcept {
        return open(ns, track, 0, std::move(on_object), std::move(on_status), {}, options, ec, Kind::Subscribe);
    }

    /** Fetches one past group: its objects in order, then ENDED (or NOT_FOUND). */
    Subscriber fetch_group(std::string_view ns, std::string_view track, std::uint64_t group_id,
                           ObjectHandler on_object, StatusHandler on_status = {},
                           const MoqSubscribeOptions &options = subscribe_options()) {
        std::error_code ec;
        Subscriber s = open(ns, track, group_id, std::move(on_object), std::move(on_status), {}, options, ec, Kind::Fetch);
        if (ec) detail::throw_last_error();
        return s;
    }

    /** Subscribes to a catalog track: the current track list, then every update. */
    Subscriber subscribe_catalog(std::string_view ns, std::string_view catalog_track, CatalogHandler on_catalog,
                                 StatusHandler on_status = {}, const MoqSubscribeOptions &options = subscribe_options()) {
        std::error_code ec;
        Subscriber s = open(ns, catalog_track, 0, {}, std::move(on_status), std::move(on_catalog), options, ec, Kind::Catalog);
        if (ec) detail::throw_last_error();
        return s;
    }

    /** Reports announced namespaces under `prefix` ("" = all), and withdrawals (active false). */
    void on_announces(std::string_view prefix, AnnounceHandler handler) {
        auto ctx = std::make_unique<detail::AnnounceContext>();
        ctx->fn = std::move(handler);
        contexts().add(ctx.get());
        detail::Context *raw = ctx.release(); // owned by contexts_ from here on
        detail::check(moq_subscribe_announces_ex(handle_, detail::cstr(prefix).c_str(),
                                                 detail::AnnounceContext::trampoline, raw));
    }
    void stop_announces() { detail::check(moq_unsubscribe_announces(handle_)); }

    /** Drains up to `max` events (poll mode); pointers inside are valid until the next poll. */
    std::size_t poll(MoqEvent *events, std::size_t max, std::chrono::milliseconds timeout) noexcept {
        auto ms = timeout.count() < 0 ? 0 : timeout.count();
        return moq_poll(handle_, events, max, static_cast<std::uint32_t>(ms > 0xffffffffLL ? 0xffffffffLL : ms));
    }

    MoqStats stats() const {
        MoqStats s;
        std::memset(&s, 0, sizeof s);
        s.struct_size = static_cast<std::uint32_t>(sizeof s);
        detail::check(moq_client_stats(handle_, &s));
        return s;
    }
    /** Why the last state change happened ("" if nothing went wrong). */
    std::string last_error() const {
        return detail::read_string([&](char *b, std::size_t n) { return moq_client_last_error(handle_, b, n); });
    }
    /** The negotiated protocol version, e.g. "moq-lite-05". */
    std::string protocol_version() const {
        return detail::read_string([&](char *b, std::size_t n) { return moq_client_protocol_version(handle_, b, n); });
    }
    /** "quic" or "websocket". */
    std::string transport() const {
        return detail::read_string([&](char *b, std::size_t n) { return moq_client_transport(handle_, b, n); });
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    MoqClient *native() const noexcept { return handle_; }

  private:
    enum class Kind { Subscribe, Fetch, Catalog };

    detail::ClientContexts &contexts() {
        if (!contexts_) contexts_ = std::make_unique<detail::ClientContexts>();
        return *contexts_;
    }

    bool connect_impl(std::string_view url, StateHandler on_state, std::error_code &ec, bool async) noexcept {
        detail::StateContext *raw = nullptr;
        std::string curl;
        MOQ_HPP_TRY {
            curl = detail::cstr(url);
            if (on_state) {
                auto ctx = std::make_unique<detail::StateContext>();
                ctx->fn = std::move(on_state);
                contexts().add(ctx.get());
                raw = ctx.release(); // owned by contexts_
            }
        } MOQ_HPP_CATCH_ALL {
            ec = make_error_code(errc::internal);
            return false;
        }
        MoqConnectionCallback cb = raw ? detail::StateContext::trampoline : nullptr;
        MoqResult r = async ? moq_connect_async(handle_, curl.c_str(), cb, raw) : moq_connect(handle_, curl.c_str(), cb, raw);
        return detail::check(r, ec);
    }

    Subscriber open(std::string_view ns, std::string_view track, std::uint64_t group, ObjectHandler on_object,
                    StatusHandler on_status, CatalogHandler on_catalog, const MoqSubscribeOptions &options,
                    std::error_code &ec, Kind kind) noexcept {
        detail::SubscriberContext *ctx = nullptr;
        std::string cns, ctrack;
        MOQ_HPP_TRY {
            cns = detail::cstr(ns);
            ctrack = detail::cstr(track);
            ctx = new detail::SubscriberContext();
            ctx->on_object = std::move(on_object);
            ctx->on_status = std::move(on_status);
            ctx->on_catalog = std::move(on_catalog);
        } MOQ_HPP_CATCH_ALL {
            delete ctx;
            ec = make_error_code(errc::internal);
            return Subscriber();
        }
        const bool poll = options.delivery == MOQ_DELIVER_POLL;
        MoqStatusCallback status_cb = (ctx->on_status && !poll) ? detail::SubscriberContext::status_trampoline : nullptr;
        MoqSubscriber *h = nullptr;
        switch (kind) {
        case Kind::Subscribe:
            h = moq_subscribe_ex(handle_, cns.c_str(), ctrack.c_str(), &options,
                                 poll ? nullptr : detail::SubscriberContext::object_trampoline, status_cb, ctx);
            break;
        case Kind::Fetch:
            h = moq_fetch_group(handle_, cns.c_str(), ctrack.c_str(), group, &options,
                                poll ? nullptr : detail::SubscriberContext::object_trampoline, status_cb, ctx);
            break;
        case Kind::Catalog:
            h = moq_subscribe_catalog_ex(handle_, cns.c_str(), ctrack.c_str(), &options,
                                         poll ? nullptr : detail::SubscriberContext::catalog_trampoline, status_cb, ctx);
            break;
        }
        if (!h) {
            ec = detail::last_error_code();
            delete ctx; // the library refused it: no callback was registered
            return Subscriber();
        }
        ec.clear();
        return Subscriber(h, ctx);
    }

    MoqClient *handle_ = nullptr;
    std::unique_ptr<detail::ClientContexts> contexts_;
};

} // namespace moq

#endif // MOQ_FFI_HPP
