#!/usr/bin/env bash
# The main job: builds the library and runs examples/pubsub_demo.c, a C program that starts the
# embedded relay, publishes and subscribes through the C API, and prints what it received.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh --no-relay
bash scripts/c-tests.sh demo
