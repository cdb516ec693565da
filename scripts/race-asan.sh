#!/usr/bin/env bash
# The race test (tests/race.rs) under a memory checker, for a short run.
#
#   scripts/race-asan.sh            AddressSanitizer + LeakSanitizer (nightly -Zsanitizer=address)
#   scripts/race-asan.sh valgrind   valgrind memcheck on the ordinary debug test binary
#
# Without an argument it uses ASan when the nightly toolchain is installed, valgrind otherwise.
# Environment: MOQ_RACE_SECS (default 8 under ASan, 15 under valgrind: it runs ~30x slower, and the run must deliver objects), MOQ_RACE_THREADS (default
# 16 under ASan, 8 under valgrind, which runs one thread at a time), MOQ_LOG (default debug under
# valgrind: the stderr log sink is exercised under the race too, between the workers' own log
# callbacks).
#
# ASan: the whole dependency tree builds with -Zsanitizer=address on nightly (aws-lc-sys
# included: its C code is built by the cc crate without instrumentation and links fine), into
# target/asan (--target is given so build scripts and proc macros stay uninstrumented). The
# first build takes several minutes; later runs reuse it. Rust's std is not instrumented (no
# -Zbuild-std), so errors inside std itself are not seen; everything of moq-ffi and its
# dependencies is. Leaks are checked at exit: the test ends with moq_shutdown, which joins every
# library thread, so nothing of the library is still in use then.
#
# Fails (non-zero) on any AddressSanitizer/LeakSanitizer report, valgrind error or definite
# leak, a failed test, or a run without the test's closing line. Prints its duration.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
start=$SECONDS
mode=${1:-auto}
if [ "$mode" = auto ]; then
  if rustup run nightly rustc --version >/dev/null 2>&1; then mode=asan; else mode=valgrind; fi
fi
log=$TARGET/race-$mode.log
mkdir -p "$TARGET"

finish() {
  local status=$1
  grep -E '^==== race|ops/s|objects published|polls |created/destroyed|RACE|test result:' "$log" || true
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: AddressSanitizer|RACE TEST FAILED' "$log"; then
    grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer)' "$log" | head -n 120 || true
    echo "FAILED: sanitizer report or race failure in $log" >&2
    status=1
  fi
  if ! grep -q '^test result: ok. 1 passed' "$log"; then
    echo "FAILED: the race test did not pass (log: $log)" >&2
    status=1
  fi
  echo "race-$mode: exit $status in $((SECONDS - start)) s"
  exit "$status"
}

case "$mode" in
  asan)
    target=x86_64-unknown-linux-gnu
    build_log=$TARGET/race-asan-build.log
    echo "==> building tests/race.rs with -Zsanitizer=address (nightly, target/asan)"
    RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes" \
      cargo +nightly test --target "$target" --target-dir "$TARGET/asan" --test race --no-run >"$build_log" 2>&1 \
      || { tail -n 40 "$build_log"; echo "FAILED: ASan build" >&2; exit 1; }
    bin=$(sed -nE 's/.*Executable tests\/race\.rs \((.*)\)/\1/p' "$build_log" | tail -n 1)
    [ -x "$bin" ] || { tail -n 20 "$build_log"; echo "FAILED: no test binary found" >&2; exit 1; }
    echo "==> $bin (build $((SECONDS - start)) s)"
    status=0
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=0 \
      MOQ_RACE_SECS=${MOQ_RACE_SECS:-8} MOQ_RACE_THREADS=${MOQ_RACE_THREADS:-16} MOQ_TEST_TIME_SCALE=3 \
      timeout 600 "$bin" --nocapture --test-threads=1 >"$log" 2>&1 || status=$?
    finish "$status"
    ;;
  valgrind)
    need_apt valgrind
    echo "==> building tests/race.rs (debug)"
    bin=$(cargo test --test race --no-run 2>&1 | sed -nE 's/.*Executable tests\/race\.rs \((.*)\)/\1/p' | tail -n 1)
    [ -x "$bin" ] || { echo "FAILED: no test binary found" >&2; exit 1; }
    supp=()
    if [ -f tests/c/valgrind.supp ]; then supp=(--suppressions="$ROOT/tests/c/valgrind.supp"); fi
    status=0
    # MOQ_LOG on: the library's stderr log sink is in use whenever the race's workers have no log
    # callback set (they set and clear theirs); its lines go to the log file, and the checks above
    # read only the test's own lines.
    MOQ_LOG=${MOQ_LOG:-debug} MOQ_RACE_SECS=${MOQ_RACE_SECS:-15} MOQ_RACE_THREADS=${MOQ_RACE_THREADS:-8} MOQ_TEST_TIME_SCALE=20 \
      timeout 900 valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
      --fair-sched=yes "${supp[@]}" "$bin" --nocapture --test-threads=1 >"$log" 2>&1 || status=$?
    grep -E '==[0-9]+== +(definitely lost|indirectly lost|possibly lost):|ERROR SUMMARY' "$log" || true
    finish "$status"
    ;;
  *)
    echo "usage: $0 [asan|valgrind]" >&2
    exit 2
    ;;
esac
