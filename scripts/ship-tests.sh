#!/usr/bin/env bash
# Issue 6 in one command: header hygiene, the C++ wrapper, the guide's examples, and the SDK
# package round trip (which also runs the command-line tool tests on the shipped binaries).
# Each step prints its own checks and duration; any failure stops the run with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
start=$SECONDS
run() {
  local name=$1; shift
  local t=$SECONDS
  echo "=== $name"
  "$@"
  echo "=== $name: done in $((SECONDS - t)) s"
}
run "header hygiene and ABI (scripts/check-header.sh)" bash scripts/check-header.sh
run "C++ wrapper under ASan/UBSan and valgrind (scripts/cpp-tests.sh)" bash scripts/cpp-tests.sh all
run "guide code blocks and examples (scripts/docs-tests.sh)" bash scripts/docs-tests.sh
run "SDK archive + Unreal layout round trip (scripts/package.sh)" bash scripts/package.sh
echo "ship-tests: all passed in $((SECONDS - start)) s"
