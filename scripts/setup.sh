#!/usr/bin/env bash
# What building moq-ffi needs on a fresh Debian machine with a Rust toolchain: a C and C++
# compiler (aws-lc-sys and the C/C++ tests), and rustfmt/clippy. Idempotent and quick when all is
# there. Everything else is installed by the step that uses it, when it runs (scripts/lib.sh:
# need_apt, need_cargo_tool): valgrind, cmake, pkg-config, mono-mcs, openssl, llvm-19 (coverage),
# cbindgen (header check), cargo-audit (audit).
#
#   scripts/setup.sh [--disk GIB]    also fail early, with a clear message, when the target
#                                    directory's file system has less than GIB GiB free
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need_apt gcc g++ make
command -v cargo >/dev/null 2>&1 || { echo "FAILED: cargo not found (install Rust with rustup)" >&2; exit 1; }
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add clippy rustfmt
fi
if [ "${1:-}" = --disk ]; then
  need_disk "$2" "$TARGET"
fi
