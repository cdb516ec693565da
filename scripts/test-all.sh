#!/usr/bin/env bash
# The whole test suite: lint, header freshness, Rust tests, panic injection, and the C suite
# under AddressSanitizer/UBSan and under valgrind. Prints each step's duration.
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
echo "=== all steps passed in $(( $(date +%s) - suite_start )) s"
