#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time and prints, per target, the executions,
# the execution rate and the result, then the total. Exits nonzero if any target crashed, hung,
# ran out of memory or a committed regression input fails; the reproducer is in
# fuzz/artifacts/<target>/ (crash-*, timeout-*, oom-*, leak-*).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# Environment:
#   FUZZ_MERGE=1          afterwards, merge the inputs that found new coverage into the committed
#                         corpus fuzz/corpus/<target>/ (libFuzzer -merge=1: only inputs that add
#                         coverage). Off by default, so CI never dirties the tree.
#   FUZZ_SKIP_REGRESSIONS=1  do not replay fuzz/regressions/<target>/* first.
#   FUZZ_TIME_<target>=S  seconds for one target instead of SECONDS_PER_TARGET
#                         (e.g. FUZZ_TIME_api_sequence=900).
#                         so their regression inputs fail until fixed).
#   FUZZ_NO_BUILD=1       use the binaries already in fuzz/target (no cargo fuzz build).
#   CARGO_BUILD_JOBS=N    cargo build jobs (default: cargo's).
#   FUZZ_SANITIZER=address|none   (default address; see below).
#   FUZZ_DEV=1            build with the dev profile (no optimisation: a cold build takes a
#                         fraction of the release one, executions are slower). What CI uses.
#
# Corpus policy: each target fuzzes a temporary working corpus (first directory, receives new
# inputs) plus the committed seeds in fuzz/corpus/<target>/ (read-only here), so a run leaves the
# tree clean; set FUZZ_MERGE=1 to keep what it found.
#
# Build: `cargo +nightly fuzz build` (cargo-fuzz's default: release optimisation with debug
# assertions and overflow checks, AddressSanitizer) for every target (one build, shared by all). The protocol stack builds
# under ASan as is (aws-lc-sys's C code is compiled by cc without the sanitizer, which is fine:
# ASan instruments the Rust code; the C library is only linked). Needs a nightly toolchain
# (`rustup toolchain install nightly` once) and cargo-fuzz (installed from crates.io on first
# use); everything else works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

SECONDS_PER_TARGET=${1:-60}
shift || true
ALL_TARGETS=(catalog_parse versions url_parse client_config api_sequence)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")
SANITIZER=${FUZZ_SANITIZER:-address}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: a nightly toolchain is needed: rustup toolchain install nightly" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "=== installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi

# Per-target libFuzzer options: the parsers are fast and small; api_sequence talks to the
# embedded relay (slow by nature: real QUIC sessions), so it gets a long per-input timeout (an
# input is bounded to ~8 s of actions plus teardown by the harness; 60 s means a real hang) and
# more memory (a 16 MiB object may be published and cached).
options_for() {
  case "$1" in
    catalog_parse) echo "-max_len=16384 -timeout=10 -rss_limit_mb=2048 -dict=fuzz/dict/catalog.dict" ;;
    url_parse) echo "-max_len=9000 -timeout=10 -rss_limit_mb=2048 -dict=fuzz/dict/url.dict" ;;
    versions) echo "-max_len=8192 -timeout=10 -rss_limit_mb=2048 -dict=fuzz/dict/versions.dict" ;;
    client_config) echo "-max_len=1024 -timeout=10 -rss_limit_mb=2048" ;;
    api_sequence) echo "-max_len=2048 -timeout=60 -rss_limit_mb=4096 -detect_leaks=0" ;;
    *) echo "" ;;
  esac
}

build_start=$(date +%s)
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
echo "=== building fuzz targets (cargo +nightly fuzz build -s $SANITIZER)"
# cargo fuzz build takes one target or none (= all of them, one shared build).
build_target=()
[ ${#TARGETS[@]} -eq 1 ] && build_target=("${TARGETS[0]}")
profile=(); profile_dir=release
[ -n "${FUZZ_DEV:-}" ] && { profile=(--dev); profile_dir=debug; }
( cd fuzz && cargo +nightly fuzz build -s "$SANITIZER" "${profile[@]}" "${build_target[@]}" )
fi
BIN_DIR=fuzz/target/x86_64-unknown-linux-gnu/${profile_dir:-release}
[ -n "${FUZZ_DEV:-}" ] && BIN_DIR=fuzz/target/x86_64-unknown-linux-gnu/debug
for target in "${TARGETS[@]}"; do
  [ -x "$BIN_DIR/$target" ] || { echo "fuzz.sh: $BIN_DIR/$target was not built" >&2; exit 2; }
done
echo "=== build: $(( $(date +%s) - build_start )) s"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/moq-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failed=()
total_execs=0
campaign_start=$(date +%s)
declare -A EXECS RATE RESULT NEW WALL

for target in "${TARGETS[@]}"; do
  bin="$BIN_DIR/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$artifacts" "$WORK/$target" "fuzz/corpus/$target"
  read -r -a opts <<<"$(options_for "$target")"

  if [ -z "${FUZZ_SKIP_REGRESSIONS:-}" ] && compgen -G "fuzz/regressions/$target/*" >/dev/null; then
    echo "=== $target: replaying fuzz/regressions/$target/"
    if ! "$bin" "${opts[@]}" -artifact_prefix="$artifacts/" fuzz/regressions/"$target"/* >"$WORK/$target.regressions.log" 2>&1; then
      echo "!!! $target: a regression input fails:"; grep -E "INVARIANT|FINDING|panicked|ERROR: AddressSanitizer|SUMMARY" "$WORK/$target.regressions.log" | head -5
      failed+=("$target (regression)")
    fi
  fi

  time_var="FUZZ_TIME_$target"
  seconds=${!time_var:-$SECONDS_PER_TARGET}
  echo "=== $target: fuzzing for ${seconds} s"
  log="$WORK/$target.log"
  start=$(date +%s)
  set +e
  "$bin" "$WORK/$target" "fuzz/corpus/$target" "${opts[@]}" \
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
  status=$?
  set -e
  WALL[$target]=$(( $(date +%s) - start ))
  execs=$(grep -m1 '^stat::number_of_executed_units:' "$log" | awk '{print $2}')
  rate=$(grep -m1 '^stat::average_exec_per_sec:' "$log" | awk '{print $2}')
  new=$(grep -m1 '^stat::new_units_added:' "$log" | awk '{print $2}')
  if [ -z "$execs" ]; then
    # No final stats (the process died): use the last status line.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  fi
  EXECS[$target]=${execs:-0}
  RATE[$target]=${rate:-0}
  NEW[$target]=${new:-?}
  total_execs=$(( total_execs + ${execs:-0} ))
  if [ $status -eq 0 ]; then
    RESULT[$target]=ok
  else
    RESULT[$target]="FAILED (exit $status)"
    failed+=("$target")
    cp "$log" "$artifacts/fuzz-$(date +%Y%m%d-%H%M%S).log"
    echo "!!! $target failed; reproducer and log in $artifacts/:"
    grep -E "INVARIANT|FINDING|panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" | head -8
    ls -t "$artifacts" | head -3 | sed "s|^|    $artifacts/|"
  fi
  echo "    executions: ${EXECS[$target]}  exec/s: ${RATE[$target]}  new units: ${NEW[$target]}  (${WALL[$target]} s)  ${RESULT[$target]}"

  if [ -n "${FUZZ_MERGE:-}" ]; then
    "$bin" -merge=1 "fuzz/corpus/$target" "$WORK/$target" "${opts[@]}" >"$WORK/$target.merge.log" 2>&1 || true
    echo "    merged: $(grep -oE 'added [0-9]+ new units' "$WORK/$target.merge.log" | tail -1)"
  fi
done

echo
echo "=== fuzz summary"
printf "%-16s %14s %10s %8s  %s\n" target executions exec/s seconds result
for target in "${TARGETS[@]}"; do
  printf "%-16s %14s %10s %8s  %s\n" "$target" "${EXECS[$target]}" "${RATE[$target]}" "${WALL[$target]}" "${RESULT[$target]}"
done
printf "%-16s %14s %10s %8s\n" total "$total_execs" "" "$(( $(date +%s) - campaign_start ))"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (reproducers in fuzz/artifacts/<target>/)"
  exit 1
fi
echo "no crashes"
