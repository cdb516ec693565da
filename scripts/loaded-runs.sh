#!/usr/bin/env bash
# Determinism under load: runs every Rust test binary (unit tests, tests/*.rs, the fuzz smoke) RUNS
# times in a row while `stress-ng --cpu 2` keeps both cores busy, LANES binaries at a time (each
# binary's runs stay consecutive), and prints per binary: passes, failures, and the slowest run.
# A test that depends on a wall-clock margin a loaded machine breaks shows up here.
#
#   scripts/loaded-runs.sh [RUNS] [LANES] [PATTERN]    defaults: 20 runs, 2 lanes, every binary
#
# MOQ_LOADED_RUNS_OF="name:N ..." gives some binaries another number of runs (e.g. "chaos:5" for
# the 2.5-minute chaos suite, whose 20 loaded runs alone take over two hours).
#
# MOQ_LOADED_FIRST="name ..." starts these binaries first (the longest: a lane that picks chaos up
# last runs on alone for its hour and a half).
#
# MOQ_LOADED_STRESS=0 starts no stress-ng of its own (another run's already loads the machine: two
# sweeps side by side, each with its own MOQ_LOADED_OUT, with one stress-ng).
#
# MOQ_LOADED_OUT=DIR puts the logs and results there instead of $TARGET/loaded-runs.
#
# MOQ_LOADED_ARGS="..." passes these arguments to every test binary (a test name filter, e.g.
# "twenty_embedded" in one sweep and "--skip twenty_embedded" in another: one binary's tests as two
# chains of consecutive runs side by side).
#
# MOQ_LOADED_KEEP_LOGS=1 keeps the log of every run (with the tests' own output: `--nocapture`),
# for the figures a passing run prints (the chaos tests' losses, lag and memory per restart).
#
# Uses the suite's build (scripts/test-all.sh builds it; this builds it if needed). Logs of failed
# runs are kept in $TARGET/loaded-runs/. Not part of the suite: it takes an hour or more.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
runs=${1:-20}
lanes=${2:-2}
pattern=${3:-.}
need_apt stress-ng
coverage_env
export RUSTC_WORKSPACE_WRAPPER=clippy-driver MOQ_DENY_WARNINGS=1
# Profiles of these runs are not the suite's coverage: keep them apart and drop them at the end.
export LLVM_PROFILE_FILE=$TARGET/loaded-runs/profiles/%p-%m.profraw
out=${MOQ_LOADED_OUT:-$TARGET/loaded-runs}
rm -rf "$out" && mkdir -p "$out/profiles"
mapfile -t bins < <(cargo test --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["profile"]["test"]:
        print(msg["target"]["name"] + " " + msg["executable"])
' | grep -E -- "$pattern" | sort)
[ ${#bins[@]} -gt 0 ] || { echo "FAILED: no test binaries" >&2; exit 1; }
if [ -n "${MOQ_LOADED_FIRST:-}" ]; then
  first=() rest=()
  for entry in "${bins[@]}"; do
    if [[ " $MOQ_LOADED_FIRST " == *" ${entry%% *} "* ]]; then first+=("$entry"); else rest+=("$entry"); fi
  done
  bins=("${first[@]}" "${rest[@]}")
fi

stress=
if [ "${MOQ_LOADED_STRESS:-1}" != 0 ]; then
  stress-ng --cpu 2 --timeout 0 --quiet &
  stress=$!
  echo "stress-ng --cpu 2 (pid $stress)"
else
  echo "no stress-ng of this run's own (MOQ_LOADED_STRESS=0): $(pgrep -c stress-ng || true) stress-ng processes running"
fi
trap '[ -z "$stress" ] || { kill $stress 2>/dev/null; wait $stress 2>/dev/null; }; rm -rf "$out/profiles"' EXIT
echo "$runs runs of ${#bins[@]} binaries, $lanes at a time"

# One binary's consecutive runs; writes "name passes failures slowest" to $out/<name>.result.
run_binary() {
  local name=$1 exe=$2 pass=0 fail=0 slowest=0 i start took n=$runs entry args=()
  [ -n "${MOQ_LOADED_KEEP_LOGS:-}" ] && args=(--nocapture)
  # shellcheck disable=SC2206 # split on purpose: several arguments
  [ -n "${MOQ_LOADED_ARGS:-}" ] && args+=(${MOQ_LOADED_ARGS})
  for entry in ${MOQ_LOADED_RUNS_OF:-}; do
    [ "${entry%%:*}" = "$name" ] && n=${entry#*:}
  done
  for ((i = 1; i <= n; i++)); do
    start=$(date +%s%N)
    if (cd "$ROOT" && timeout 900 "$exe" "${args[@]}" >"$out/$name.$i.log" 2>&1); then
      pass=$((pass + 1))
      [ -n "${MOQ_LOADED_KEEP_LOGS:-}" ] || rm -f "$out/$name.$i.log"
    else
      fail=$((fail + 1))
      echo "FAILED: $name run $i (log kept: $out/$name.$i.log)"
    fi
    took=$(( ($(date +%s%N) - start) / 1000000 ))
    [ "$took" -gt "$slowest" ] && slowest=$took
  done
  echo "$name $pass $fail $slowest" >"$out/$name.result"
}

start=$SECONDS
lane_pids=()
for entry in "${bins[@]}"; do
  # shellcheck disable=SC2086 # "name path": two words on purpose
  run_binary ${entry} &
  lane_pids+=($!)
  if [ ${#lane_pids[@]} -ge "$lanes" ]; then
    wait -n "${lane_pids[@]}" || true
    alive=()
    for pid in "${lane_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    lane_pids=("${alive[@]}")
  fi
done
# Only the lanes: a bare `wait` would wait for stress-ng too.
for pid in "${lane_pids[@]}"; do wait "$pid" || true; done
printf '%-24s %6s %6s %12s\n' binary passed failed slowest_s
failed=0
for entry in "${bins[@]}"; do
  read -r name pass fail slowest <"$out/${entry%% *}.result"
  printf '%-24s %6s %6s %12.1f\n' "$name" "$pass" "$fail" "$(echo "$slowest / 1000" | bc -l)"
  [ "$fail" -eq 0 ] || failed=1
done
echo "loaded runs: done in $((SECONDS - start)) s"
[ "$failed" -eq 0 ] || { echo "FAILED: some runs failed (logs in $out)" >&2; exit 1; }
