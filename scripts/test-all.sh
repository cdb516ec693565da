#!/usr/bin/env bash
# The whole test suite: lint, header freshness, dependency audit, Rust tests (the race test
# among them), panic injection, the C suite under AddressSanitizer/UBSan and under valgrind, the
# C++ wrapper tests, the guide's examples, the SDK/Unreal package round trip, the race test
# under valgrind, bounded fuzzing of every fuzz target, and line coverage (>= 85%).
# Prints each step's duration.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
suite_start=$(date +%s)
step() {
  local name=$1; shift
  local start=$(date +%s)
  echo "=== $name"
  "$@"
  echo "=== $name: done in $(( $(date +%s) - start )) s"
}
step "setup" bash scripts/setup.sh
step "cargo fmt --check" cargo fmt --all -- --check
step "cargo clippy" cargo clippy --all-targets -- -D warnings
step "cargo clippy (panic-injection)" cargo clippy --all-targets --features panic-injection -- -D warnings
step "header freshness and C/C++ compile check" bash scripts/check-header.sh
step "dependency audit (offline RustSec snapshot)" bash scripts/audit.sh
step "rust tests" cargo test --no-fail-fast
step "panic injection tests" cargo test --features panic-injection --test panic_injection
step "C suite under ASAN/UBSan" bash scripts/c-tests.sh asan
step "C suite under valgrind" bash scripts/c-tests.sh valgrind
step "dlopen/moq_shutdown/dlclose cycles" bash scripts/c-tests.sh dlopen
step "relay kill -9/restart loop under ASAN" bash scripts/c-tests.sh fault
step "C++ wrapper (moq_ffi.hpp) under ASAN/UBSan, C++20, -fno-exceptions and valgrind" bash scripts/cpp-tests.sh all
step "guide code blocks and examples compiled and run" bash scripts/docs-tests.sh
step "SDK archive + Unreal layout round trip (CMake, pkg-config, tools; dev build)" \
  env MOQ_PACKAGE_PROFILE=dev bash scripts/package.sh
step "race test under valgrind (8 threads, 15 s)" bash scripts/race-asan.sh valgrind
step "fuzz every target (dev build with ASan; 30 s each, api_sequence 60 s)" \
  env FUZZ_DEV=1 FUZZ_TIME_api_sequence=60 bash scripts/fuzz.sh 30
step "line coverage of src/ (cargo-tarpaulin, threshold 85%)" bash scripts/coverage.sh 85
echo "=== all steps passed in $(( $(date +%s) - suite_start )) s"
