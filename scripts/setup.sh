#!/usr/bin/env bash
# Installs what building and testing moq-ffi needs on a fresh Debian machine with a Rust
# toolchain: a C compiler, valgrind, openssl, cbindgen (for the header check) and the
# standalone moq-relay 0.17.10 (for the interop and fault tests).
# Idempotent: installs only what is missing. `--no-relay` (the demo) skips the standalone relay and
# the test-only tools (cargo-fuzz, cargo-tarpaulin).
set -euo pipefail
need_apt=()
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
# The CMake package, pkg-config consumers, guide examples and the Unreal Build.cs check.
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
[ "${1:-}" = "--no-relay" ] || command -v mcs >/dev/null 2>&1 || need_apt+=(mono-mcs)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cbindgen >/dev/null 2>&1 || ! cbindgen --version | grep -q '0\.29\.'; then
  cargo install cbindgen --version 0.29.4 --quiet
fi
# The offline dependency audit (scripts/audit.sh); --locked: its newest dependencies need a newer rustc.
command -v cargo-audit >/dev/null 2>&1 || cargo install cargo-audit --version 0.22.2 --locked --quiet
# The reliability gates (issue 7): cargo-fuzz for the bounded fuzz runs (needs the nightly
# toolchain, which this machine image carries: rustup cannot fetch one offline), and
# cargo-tarpaulin for line coverage (~9 min to build, once).
if [ "${1:-}" != "--no-relay" ]; then
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --version 0.13.2 --locked --quiet
  command -v cargo-tarpaulin >/dev/null 2>&1 || cargo install cargo-tarpaulin --version 0.37.5 --locked --quiet
fi
# The standalone relay the interop and fault tests run as a separate process (~7 min, once);
# the demo does not need it.
if [ "${1:-}" != "--no-relay" ]; then
  bash "$(dirname "$0")/install-moq-relay.sh"
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true
