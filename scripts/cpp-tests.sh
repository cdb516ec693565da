#!/usr/bin/env bash
# Tests the C++17 wrapper include/moq_ffi.hpp (tests/cpp/test_wrapper.cpp) against the embedded
# relay on loopback.
#
#   scripts/cpp-tests.sh compile   the wrapper compiles warning-free (-Wall -Wextra -Wpedantic
#                                  -Werror -Wshadow -Wconversion ...) as C++17 and C++20
#   scripts/cpp-tests.sh asan      test_wrapper under AddressSanitizer + UBSan + LeakSanitizer
#                                  (C++17), test_noexcept (-fno-exceptions, error_code API) under
#                                  the same, and test_wrapper plain as C++20 (moq::Bytes = std::span)
#   scripts/cpp-tests.sh valgrind  the test under valgrind memcheck (definite leaks and memory
#                                  errors fail)
#   scripts/cpp-tests.sh all       (default) all three
#
# Binaries and logs go to $TARGET/cpp/ (scripts/lib.sh). Needs g++ and cargo; installs g++/valgrind with apt-get
# if missing. The test ends with moq_shutdown(), which joins every library thread, so no
# linger is needed before the leak checks (see scripts/c-tests.sh for the background).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
OUT=$TARGET/cpp
CXX=${CXX:-g++}
WARN=(-Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor -Wold-style-cast -Wundef)
LINK=(-L"$LIBDIR" -lmoq_ffi -Wl,-rpath,"$LIBDIR" -lpthread)
SANITIZE=(-g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
mkdir -p "$OUT"

build() { step "cargo build" cargo build --quiet; }

run_compile() {
  # The wrapper's own header check: including it alone, in every mode, under strict warnings.
  printf '#include "moq_ffi.hpp"\nint main() { return moq::abi_compatible() ? 0 : 1; }\n' >"$OUT/include_only.cpp"
  for std in c++17 c++20; do
    step "compile moq_ffi.hpp as $std" "$CXX" -std=$std "${WARN[@]}" -I"$ROOT/include" -c "$OUT/include_only.cpp" -o "$OUT/include_only.o"
    step "compile test_wrapper.cpp as $std" "$CXX" -std=$std "${WARN[@]}" -I"$ROOT/include" -fsyntax-only tests/cpp/test_wrapper.cpp
    step "compile moq_ffi.hpp as $std -fno-exceptions" "$CXX" -std=$std -fno-exceptions "${WARN[@]}" -I"$ROOT/include" -fsyntax-only tests/cpp/test_noexcept.cpp
  done
  echo "compile: moq_ffi.hpp and its tests compile warning-free as C++17 and C++20, with and without exceptions"
}

run_asan_all() {
  build
  step "compile test_wrapper (C++17, ASan+UBSan)" "$CXX" -std=c++17 "${WARN[@]}" "${SANITIZE[@]}" \
    -I"$ROOT/include" tests/cpp/test_wrapper.cpp "${LINK[@]}" -o "$OUT/test_wrapper_asan"
  run_asan "test_wrapper (ASan+UBSan+LSan)" "$OUT/asan.log" 300 "$OUT/test_wrapper_asan"
  step "compile test_noexcept (C++17, -fno-exceptions, ASan+UBSan)" "$CXX" -std=c++17 -fno-exceptions "${WARN[@]}" \
    "${SANITIZE[@]}" -I"$ROOT/include" tests/cpp/test_noexcept.cpp "${LINK[@]}" -o "$OUT/test_noexcept_asan"
  run_asan "test_noexcept (-fno-exceptions, ASan+UBSan+LSan)" "$OUT/asan-noexcept.log" 120 "$OUT/test_noexcept_asan"
  step "compile test_wrapper (C++20)" "$CXX" -std=c++20 "${WARN[@]}" -g -I"$ROOT/include" tests/cpp/test_wrapper.cpp "${LINK[@]}" -o "$OUT/test_wrapper_cxx20"
  local log=$OUT/cxx20.log status=0
  step "test_wrapper (C++20, std::span)" timeout 120 "$OUT/test_wrapper_cxx20" >"$log" 2>&1 || status=$?
  cat "$log"
  require_closing_line "$log"
  [ "$status" -eq 0 ] || { echo "FAILED: test_wrapper (C++20) exited with $status" >&2; return 1; }
}

run_valgrind_all() {
  build
  step "compile test_wrapper (C++17)" "$CXX" -std=c++17 "${WARN[@]}" -g -I"$ROOT/include" tests/cpp/test_wrapper.cpp "${LINK[@]}" -o "$OUT/test_wrapper"
  run_valgrind "test_wrapper (valgrind memcheck)" "$OUT/valgrind.log" 600 MOQ_TEST_TIME_SCALE=10 "$OUT/test_wrapper"
}

mode=${1:-all}
total=$SECONDS
need_apt "$CXX=g++"
case "$mode" in
  compile) run_compile ;;
  asan) run_asan_all ;;
  valgrind) run_valgrind_all ;;
  all) run_compile; run_asan_all; run_valgrind_all ;;
  *) echo "usage: $0 [compile|asan|valgrind|all]" >&2; exit 2 ;;
esac
echo "cpp-tests $mode: passed in $((SECONDS - total)) s"
