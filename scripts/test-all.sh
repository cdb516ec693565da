#!/usr/bin/env bash
# The whole test suite (what CI's .ci/run calls), every gate in one run: format, clippy, header,
# dependency audit, the Rust tests (panic injection, the race test and the fuzz smoke among them),
# the C suite under ASan/UBSan and under valgrind, dlopen cycles, the relay kill -9 loop, the C++
# wrapper, the guide's examples, the SDK/Unreal package round trip, the race test under valgrind,
# and line coverage (>= 85%).
#
# One build serves every step: the debug build of this package, compiled by clippy-driver (so the
# build is the lint: -D warnings on our crates) and instrumented for coverage
# (scripts/coverage-wrap.sh); the dependencies build once, as for a plain `cargo build`. Every
# process that runs our code (Rust tests, C/C++ programs, valgrind runs) adds to the coverage,
# so the tests run once. Each step installs the tools it needs when they are missing.
#
# Disk: about 12 GiB free under the target directory (the debug build with its test binaries,
# ~8 GiB; the package, C/C++ binaries and coverage profiles), checked first. Everything the suite
# writes goes to the target directory ($CARGO_TARGET_DIR, else ./target) or to temporary
# directories it removes; `cargo clean` frees it all.
#
# Prints each step's duration and the total.
#
#   scripts/test-all.sh            every step
#   scripts/test-all.sh PATTERN    only the steps whose name matches PATTERN (grep -E), in the same
#                                  build: for working on one part (e.g. 'valgrind|C\+\+')
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
suite_start=$SECONDS
timings=()
only=${1:-}
run_step() {
  local name=$1 start=$SECONDS
  shift
  if [ -n "$only" ] && ! grep -qE -- "$only" <<<"$name"; then return 0; fi
  echo "=== $name"
  "$@"
  timings+=("$(printf '%5d s  %s' $((SECONDS - start)) "$name")")
  echo "=== $name: done in $((SECONDS - start)) s"
}

# Temporary files the tests create (relay logs, certificates, race dumps) are removed by the tests
# when they pass; the suite checks that none is left behind.
tmp=${TMPDIR:-/tmp}
leftovers_before=$(find "$tmp" -maxdepth 1 -name 'moq-*' 2>/dev/null | sort)
run_step "setup (compilers, rustfmt/clippy, disk)" bash scripts/setup.sh --disk 12
# The one build (see above): coverage instrumentation, clippy-driver on our crates, -D warnings.
coverage_env
export RUSTC_WORKSPACE_WRAPPER=clippy-driver MOQ_DENY_WARNINGS=1
[ -n "$only" ] || { rm -rf "$MOQ_COVERAGE_DIR/profiles" && mkdir -p "$MOQ_COVERAGE_DIR/profiles"; }
run_step "cargo fmt --check" cargo fmt --all -- --check
run_step "build and clippy (every target, debug, -D warnings)" cargo test --no-run --all-targets --quiet
list_test_executables >"$MOQ_COVERAGE_DIR/executables.txt"
run_step "header freshness and C/C++ compile check" bash scripts/check-header.sh
run_step "dependency audit (offline RustSec snapshot)" bash scripts/audit.sh
run_step "rust tests (panic injection, race, fuzz smoke included)" cargo test --no-fail-fast
run_step "C suite under ASAN/UBSan" bash scripts/c-tests.sh asan
run_step "C suite under valgrind" bash scripts/c-tests.sh valgrind
run_step "dlopen/moq_shutdown/dlclose cycles" bash scripts/c-tests.sh dlopen
run_step "relay kill -9/restart loop under ASAN" bash scripts/c-tests.sh fault
run_step "relay restarts and bursts in a slowed process (tests/c/test_chaos.c under ASAN)" bash scripts/c-tests.sh chaos
run_step "C++ wrapper (moq_ffi.hpp) under ASAN/UBSan, C++20, -fno-exceptions and valgrind" bash scripts/cpp-tests.sh all
run_step "guide code blocks and examples compiled and run" bash scripts/docs-tests.sh
run_step "SDK archive + Unreal layout round trip (CMake, pkg-config, tools; dev build)" \
  env MOQ_PACKAGE_PROFILE=dev bash scripts/package.sh
run_step "race test under valgrind (8 threads, 15 s, MOQ_LOG=debug)" bash scripts/race-asan.sh valgrind
run_step "line coverage of src/ (every step's profiles, threshold 85%)" bash scripts/coverage.sh report 85
leftovers=$(comm -13 <(echo "$leftovers_before") <(find "$tmp" -maxdepth 1 -name 'moq-*' 2>/dev/null | sort))
if [ -n "$leftovers" ]; then
  echo "FAILED: the suite left files in $tmp:" >&2
  echo "$leftovers" >&2
  exit 1
fi
echo "=== step durations"
printf '%s\n' "${timings[@]}"
echo "=== all steps passed in $((SECONDS - suite_start)) s"
