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
# Binaries and logs go to target/cpp/. Needs g++ and cargo; installs g++/valgrind with apt-get
# if missing. The test ends with moq_shutdown(), which joins every library thread, so no
# linger is needed before the leak checks (see scripts/c-tests.sh for the background).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/cpp
LIBDIR=$ROOT/target/debug
CXX=${CXX:-g++}
WARN=(-Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor -Wold-style-cast -Wundef)
LINK=(-L"$LIBDIR" -lmoq_ffi -Wl,-rpath,"$LIBDIR" -lpthread)
CLOSING_LINE='^[0-9]+ passed, [0-9]+ failed$'
SANITIZER_REPORT='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)'
mkdir -p "$OUT"

step() {
  local name=$1
  shift
  echo "==> $name"
  local start=$SECONDS status=0
  "$@" || status=$?
  echo "<== $name: $((SECONDS - start)) s (exit $status)"
  return "$status"
}

ensure_tools() {
  local need=()
  command -v "$CXX" >/dev/null 2>&1 || need+=(g++)
  command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
  fi
}

require_closing_line() {
  local log=$1 line
  line=$(grep -E "$CLOSING_LINE" "$log" | tail -n 1 || true)
  [ -n "$line" ] || { echo "FAILED: no closing 'N passed, N failed' line in $log" >&2; return 1; }
  echo "closing line: $line"
  case "$line" in
    0\ passed*) echo "FAILED: the test checked nothing" >&2; return 1 ;;
    *" 0 failed") ;;
    *) echo "FAILED: $line" >&2; return 1 ;;
  esac
}

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

run_asan() {
  build
  step "compile test_wrapper (C++17, ASan+UBSan)" "$CXX" -std=c++17 "${WARN[@]}" -g -O1 -fsanitize=address,undefined \
    -fno-omit-frame-pointer -fno-sanitize-recover=undefined -I"$ROOT/include" tests/cpp/test_wrapper.cpp "${LINK[@]}" -o "$OUT/test_wrapper_asan"
  local log=$OUT/asan.log status=0
  step "test_wrapper (ASan+UBSan+LSan)" env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    timeout 300 "$OUT/test_wrapper_asan" >"$log" 2>&1 || status=$?
  cat "$log"
  require_closing_line "$log"
  if grep -qE "$SANITIZER_REPORT" "$log"; then echo "FAILED: sanitizer report in $log" >&2; return 1; fi
  [ "$status" -eq 0 ] || { echo "FAILED: test_wrapper (ASan) exited with $status" >&2; return 1; }
  echo "asan: no AddressSanitizer/LeakSanitizer/UBSan report, exit 0"

  step "compile test_noexcept (C++17, -fno-exceptions, ASan+UBSan)" "$CXX" -std=c++17 -fno-exceptions "${WARN[@]}" -g -O1 \
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -I"$ROOT/include" \
    tests/cpp/test_noexcept.cpp "${LINK[@]}" -o "$OUT/test_noexcept_asan"
  log=$OUT/asan-noexcept.log
  status=0
  step "test_noexcept (-fno-exceptions, ASan+UBSan+LSan)" env ASAN_OPTIONS=detect_leaks=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 timeout 120 "$OUT/test_noexcept_asan" >"$log" 2>&1 || status=$?
  cat "$log"
  require_closing_line "$log"
  if grep -qE "$SANITIZER_REPORT" "$log"; then echo "FAILED: sanitizer report in $log" >&2; return 1; fi
  [ "$status" -eq 0 ] || { echo "FAILED: test_noexcept exited with $status" >&2; return 1; }
  echo "asan (-fno-exceptions): no sanitizer report, exit 0"

  step "compile test_wrapper (C++20)" "$CXX" -std=c++20 "${WARN[@]}" -g -I"$ROOT/include" tests/cpp/test_wrapper.cpp "${LINK[@]}" -o "$OUT/test_wrapper_cxx20"
  log=$OUT/cxx20.log
  status=0
  step "test_wrapper (C++20, std::span)" timeout 120 "$OUT/test_wrapper_cxx20" >"$log" 2>&1 || status=$?
  cat "$log"
  require_closing_line "$log"
  [ "$status" -eq 0 ] || { echo "FAILED: test_wrapper (C++20) exited with $status" >&2; return 1; }
}

run_valgrind() {
  build
  step "compile test_wrapper (C++17)" "$CXX" -std=c++17 "${WARN[@]}" -g -I"$ROOT/include" tests/cpp/test_wrapper.cpp "${LINK[@]}" -o "$OUT/test_wrapper"
  local log=$OUT/valgrind.log status=0 supp=()
  [ -f tests/c/valgrind.supp ] && supp=(--suppressions="$ROOT/tests/c/valgrind.supp")
  step "test_wrapper (valgrind memcheck)" env MOQ_TEST_TIME_SCALE=10 timeout 600 valgrind --leak-check=full \
    --error-exitcode=1 --errors-for-leak-kinds=definite "${supp[@]}" "$OUT/test_wrapper" >"$log" 2>&1 || status=$?
  grep -vE '^==[0-9]+== ' "$log" || true
  echo "--- valgrind summary ---"
  grep -E '==[0-9]+== +(definitely lost|indirectly lost|possibly lost|still reachable|suppressed):|ERROR SUMMARY' "$log" || true
  require_closing_line "$log"
  [ "$status" -eq 0 ] || { echo "FAILED: valgrind run exited with $status (full log: $log)" >&2; return 1; }
  grep -qE 'ERROR SUMMARY: 0 errors' "$log" || { echo "FAILED: valgrind reported errors" >&2; return 1; }
  echo "valgrind: 0 errors, no definite leaks"
}

mode=${1:-all}
total=$SECONDS
ensure_tools
case "$mode" in
  compile) run_compile ;;
  asan) run_asan ;;
  valgrind) run_valgrind ;;
  all) run_compile; run_asan; run_valgrind ;;
  *) echo "usage: $0 [compile|asan|valgrind|all]" >&2; exit 2 ;;
esac
echo "cpp-tests $mode: passed in $((SECONDS - total)) s"
