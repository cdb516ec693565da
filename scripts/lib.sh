# Sourced by the test and demo scripts: where things are, timed steps, installing a tool only when
# the step that needs it runs, and the run-and-judge helpers the C and C++ steps share.
#
#   ROOT     the checkout
#   TARGET   cargo's target directory ($CARGO_TARGET_DIR, else $ROOT/target)
#   LIBDIR   where the debug libmoq_ffi.so / .a and the moq-relay binary are ($TARGET/debug)
#
# Every helper fails loudly (non-zero, with a line that says what) instead of going on.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LIBDIR=$TARGET/debug

# step NAME COMMAND...: runs COMMAND and prints how long it took; returns its status.
step() {
  local name=$1 start=$SECONDS status=0
  shift
  echo "==> $name"
  "$@" || status=$?
  echo "<== $name: $((SECONDS - start)) s (exit $status)"
  return "$status"
}

# need_apt COMMAND[=PACKAGE]...: installs, with apt-get, the packages of the commands missing.
need_apt() {
  local missing=() item cmd pkg
  for item in "$@"; do
    cmd=${item%%=*}
    pkg=${item#*=}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing ${missing[*]} (apt-get)"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# need_cargo_tool COMMAND CRATE VERSION: `cargo install CRATE --version VERSION --locked` unless
# COMMAND already reports VERSION.
need_cargo_tool() {
  local cmd=$1 crate=$2 version=$3
  if command -v "$cmd" >/dev/null 2>&1 && "$cmd" --version 2>/dev/null | grep -qF "$version"; then
    return 0
  fi
  echo "installing $crate $version (cargo install, once per machine)"
  local start=$SECONDS
  cargo install "$crate" --version "$version" --locked --quiet
  echo "installed $crate $version in $((SECONDS - start)) s"
}

# need_disk GIB WHERE: fails with a clear message when WHERE's file system has less than GIB GiB
# free (a full disk otherwise shows up as a Bus error in the linker).
need_disk() {
  local gib=$1 where=$2 free
  mkdir -p "$where"
  free=$(df -Pk "$where" | awk 'NR == 2 {print int($4 / 1048576)}')
  if [ "$free" -lt "$gib" ]; then
    echo "FAILED: $where has $free GiB free; this needs $gib GiB (df -h $where). Free some space (e.g. cargo clean) and run again." >&2
    return 1
  fi
  echo "disk: $free GiB free at $where (needs $gib GiB)"
}

# require_closing_line LOG: the test program printed its closing "N passed, M failed" line with
# N > 0 and M = 0.
require_closing_line() {
  local log=$1 line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
  if [ -z "$line" ]; then
    echo "FAILED: the test program did not print its closing 'N passed, M failed' line ($log)" >&2
    return 1
  fi
  echo "closing line: $line"
  case "$line" in
    0\ passed*) echo "FAILED: the test checked nothing" >&2; return 1 ;;
    *" 0 failed") ;;
    *) echo "FAILED: $line" >&2; return 1 ;;
  esac
}

# run_asan NAME LOG TIMEOUT [VAR=VALUE...] COMMAND...: runs a program built with
# -fsanitize=address,undefined (LeakSanitizer on, UBSan halting) with the VAR=VALUE settings in
# its environment, prints its log, and fails on a sanitizer report, a non-zero exit or a
# missing/failing closing line.
run_asan() {
  local name=$1 log=$2 limit=$3 status=0 vars=()
  shift 3
  while [[ ${1:-} == *=* ]]; do vars+=("$1"); shift; done
  local lsan=""
  [ -f "$ROOT/tests/c/lsan.supp" ] && lsan="suppressions=$ROOT/tests/c/lsan.supp:print_suppressions=1"
  step "$name" env "${vars[@]}" ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="$lsan" \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 timeout "$limit" "$@" >"$log" 2>&1 || status=$?
  cat "$log"
  require_closing_line "$log"
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer)' "$log"; then
    echo "FAILED: sanitizer report in $log" >&2
    return 1
  fi
  if [ "$status" -ne 0 ]; then
    echo "FAILED: $name exited with $status" >&2
    return 1
  fi
  echo "$name: no AddressSanitizer/LeakSanitizer/UBSan report, exit 0"
}

# run_valgrind NAME LOG TIMEOUT [VAR=VALUE...] COMMAND...: runs COMMAND under valgrind memcheck
# with the VAR=VALUE settings in its environment (set outside valgrind: valgrind does not follow
# an exec, so `valgrind env ... program` would run the program unchecked). Definite leaks and
# memory errors fail (tests/c/valgrind.supp applies); prints the program's own output and
# valgrind's summary, and fails on an error, a non-zero exit, a missing/failing closing line, or a
# log without valgrind's "ERROR SUMMARY: 0 errors" (the program did not run under valgrind).
run_valgrind() {
  local name=$1 log=$2 limit=$3 status=0 vars=()
  shift 3
  while [[ ${1:-} == *=* ]]; do vars+=("$1"); shift; done
  need_apt valgrind
  local supp=()
  [ -f "$ROOT/tests/c/valgrind.supp" ] && supp=(--suppressions="$ROOT/tests/c/valgrind.supp")
  step "$name" env "${vars[@]}" timeout "$limit" valgrind --leak-check=full --error-exitcode=1 \
    --errors-for-leak-kinds=definite "${supp[@]}" "$@" >"$log" 2>&1 || status=$?
  grep -vE '^==[0-9]+== ' "$log" || true
  echo "--- valgrind summary ---"
  grep -E '==[0-9]+== +(definitely lost|indirectly lost|possibly lost|still reachable|suppressed):|ERROR SUMMARY' "$log" || true
  require_closing_line "$log"
  if [ "$status" -ne 0 ]; then
    echo "FAILED: $name exited with $status under valgrind (full log: $log)" >&2
    return 1
  fi
  if ! grep -qE '==[0-9]+== ERROR SUMMARY: 0 errors' "$log"; then
    echo "FAILED: $name: no valgrind summary in $log (did it run under valgrind?)" >&2
    return 1
  fi
  echo "$name: no memory errors, no definite leaks"
}

# coverage_env: the one build every step of the suite shares: this package's crates instrumented
# for line coverage (scripts/coverage-wrap.sh; src/lib.rs names MOQ_COVERAGE_BUILD so cargo
# rebuilds when it changes), and where every process running our code writes its profile
# (scripts/coverage.sh merges them).
coverage_env() {
  export MOQ_COVERAGE_BUILD=1
  export RUSTC_WRAPPER=$ROOT/scripts/coverage-wrap.sh
  export MOQ_COVERAGE_DIR=$TARGET/coverage
  export LLVM_PROFILE_FILE=$MOQ_COVERAGE_DIR/profiles/%p-%m.profraw
  mkdir -p "$MOQ_COVERAGE_DIR/profiles"
}

# list_test_executables: the test executables of the current build, one path per line (builds
# what is missing first).
list_test_executables() {
  cargo test --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
        print(msg["executable"])
'
}
