// check.hpp - the CHECK macro and counters shared by the C++ wrapper tests (tests/cpp/).
#ifndef MOQ_FFI_TEST_CHECK_HPP
#define MOQ_FFI_TEST_CHECK_HPP
#include <cstdio>
#include <string>

static int passed = 0, failed = 0;

// Records one check; on failure prints where and why and goes on.
#define CHECK(cond, what)                                                                  \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            std::fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #cond,        \
                         std::string(what).c_str());                                       \
        }                                                                                  \
    } while (0)
#endif
