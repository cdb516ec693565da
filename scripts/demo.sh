#!/usr/bin/env bash
# The main job: builds the library and runs examples/pubsub_demo.c, a C program that starts the
# embedded relay, publishes and subscribes through the C API, checks that every object arrived in
# order and intact, and prints what it received. Installs only what that needs (a C compiler);
# needs ~3 GiB free for the build. No speed figures: scripts/bench.sh measures the release build.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
start=$SECONDS
bash scripts/setup.sh --disk 3
bash scripts/c-tests.sh demo
echo "demo: done in $((SECONDS - start)) s"
