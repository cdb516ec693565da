#!/usr/bin/env bash
# Benchmarks (issue 5): builds in release, runs the end-to-end, call-cost and scale benchmarks
# (each prints a table and BENCH lines), then prints every BENCH line together.
#
#   bash scripts/bench.sh              # full run (~15 min on 2 cores)
#   bash scripts/bench.sh --quick      # short run (~5 min): MOQ_BENCH_QUICK=1
#   bash scripts/bench.sh --profile    # also: instructions per call under callgrind
#
# Logs go to target/bench-logs/. Only loopback and port 0 are used.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

profile=0
for arg in "$@"; do
  case "$arg" in
    --quick) export MOQ_BENCH_QUICK=1 ;;
    --profile) profile=1 ;;
    *) echo "usage: $0 [--quick] [--profile]" >&2; exit 2 ;;
  esac
done

logs=target/bench-logs
mkdir -p "$logs"
rm -f "$logs"/*.txt "$logs"/build.log

echo "=== building (release)"
# Build once, then run the built executables directly (with `--bench`, as `cargo bench` does):
# a later `cargo bench` would wait for the shared target directory's lock and rebuild whatever
# changed meanwhile on a machine where others build in the same tree.
cargo bench --bench e2e --bench calls --bench scale --no-run 2>&1 | tee "$logs/build.log"
exe() {
  local path
  path=$(sed -n "s|.*Executable benches/$1.rs (\(.*\))|\1|p" "$logs/build.log" | tail -1)
  [ -x "$path" ] || { echo "no executable for bench $1 in $logs/build.log" >&2; exit 1; }
  echo "$path"
}
e2e_exe=$(exe e2e)
calls_exe=$(exe calls)
scale_exe=$(exe scale)

run() {
  local name=$1; shift
  echo "=== $name"
  local start
  start=$(date +%s)
  "$@" 2>&1 | tee "$logs/$name.txt"
  echo "=== $name: done in $(( $(date +%s) - start )) s"
}

run e2e "$e2e_exe" --bench
run calls "$calls_exe" --bench
# The issue's scenario (1,000 tracks x 10 objects/s), then a load this class of machine sustains
# (1 object/s per track), so steady-state memory and latency are visible even where the first
# saturates the protocol stack.
run scale "$scale_exe" --bench
run scale_1hz env MOQ_SCALE_RATE=1 "$scale_exe" --bench

if [ "$profile" = 1 ]; then
  if ! command -v valgrind >/dev/null; then
    echo "=== profile skipped: valgrind is not installed"
  else
    # Instruction counts are stable on a busy machine where wall-clock times are not.
    echo "=== callgrind: instructions per call (20,000 calls each)"
    exe=$calls_exe
    MOQ_BENCH_PROFILE=20000 valgrind --tool=callgrind --callgrind-out-file="$logs/calls.callgrind" \
      "$exe" >/dev/null 2>"$logs/calls.valgrind.txt"
    # awk reads to the end (no `exit`): under pipefail an early exit SIGPIPEs
    # callgrind_annotate, and `set -e` then ended the script here.
    per_call() {
      callgrind_annotate --inclusive=yes --threshold=100 "$logs/calls.callgrind" 2>/dev/null |
        awk -v f=":$1 [" '!done && index($0, f) {gsub(",", "", $1); printf "%.0f", $1 / 20000; done = 1}'
    }
    {
      c=$(per_call calls::capi_publish)
      r=$(per_call calls::raw_publish)
      awk -v c="$c" -v r="$r" \
        'BEGIN { printf "BENCH calls.publish_data_64b_instructions capi=%s raw=%s ratio=%.4f\n", c, r, (r > 0 ? c / r : 0) }'
      # Posting side of the dispatcher (the callback thread's own work is inlined into its
      # thread entry; its system calls are counted below).
      c=$(per_call calls::capi_dispatch)
      r=$(per_call calls::raw_dispatch)
      awk -v c="$c" -v r="$r" \
        'BEGIN { printf "BENCH calls.dispatch_post_per_job_instructions capi=%s raw=%s ratio=%.4f\n", c, r, (r > 0 ? c / r : 0) }'
      if command -v strace >/dev/null; then
        # System calls the callback thread makes per job (a futex wake per job means a
        # syscall on every callback even when nobody waits).
        MOQ_BENCH_PROFILE=20000 strace -f -e trace=futex,prctl -o "$logs/calls.strace" "$exe" >/dev/null 2>&1 || true
        tid=$(grep -m1 'moq-ffi-callbac' "$logs/calls.strace" | awk '{print $1}')
        n=$(grep -cE "^$tid +futex" "$logs/calls.strace" || true)
        awk -v n="$n" 'BEGIN { printf "BENCH calls.dispatch_futex_syscalls_per_job value=%.3f unit=syscalls\n", n / 20000 }'
      fi
    } | tee "$logs/profile.txt"
  fi
fi

echo
echo "=== BENCH lines ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores)"
grep -h '^BENCH ' "$logs"/*.txt
