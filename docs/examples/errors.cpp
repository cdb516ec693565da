// errors.cpp - the C++ wrapper's two error styles: exceptions and std::error_code.
#include "moq_ffi.hpp"

#include <cstdio>
#include <system_error>

int main() {
    moq::Client client = moq::Client::create();
    bool ok = true;
    // [exceptions]
    try {
        client.connect("not a url");
    } catch (const moq::Error &e) {
        // e.code(): the MoqResultCode; e.what(): the library's message.
        std::fprintf(stderr, "connect failed (%d): %s\n", static_cast<int>(e.code()), e.what());
        ok = ok && e.code() == MOQ_ERROR_INVALID_ARGUMENT;
    }
    // [/exceptions]
    // [error_code]
    std::error_code ec;
    moq::Publisher pub = client.publish("", "track", moq::publisher_options(), ec);
    if (ec == moq::errc::invalid_argument) {
        std::fprintf(stderr, "publish: %s (%s)\n", ec.message().c_str(), moq::last_error().c_str());
    }
    // [/error_code]
    ok = ok && !pub && ec == moq::errc::invalid_argument;
    return ok ? 0 : 1;
}
