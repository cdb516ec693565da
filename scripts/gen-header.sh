#!/usr/bin/env bash
# Regenerates include/moq_ffi.h; with --check, fails if the committed header is stale.
# Installs cbindgen 0.29.4 (cargo install, once per machine) if it is missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
need_cargo_tool cbindgen cbindgen 0.29.4
out=include/moq_ffi.h
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp)
  cbindgen --config cbindgen.toml --crate moq-ffi --output "$tmp" --quiet
  if ! diff -u "$out" "$tmp"; then
    echo "include/moq_ffi.h is stale: run scripts/gen-header.sh and commit it" >&2
    rm -f "$tmp"; exit 1
  fi
  rm -f "$tmp"; echo "header is up to date"
else
  cbindgen --config cbindgen.toml --crate moq-ffi --output "$out" --quiet
fi
