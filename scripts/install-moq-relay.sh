#!/usr/bin/env bash
# Install the standalone moq-relay binary (0.17.10, noq QUIC backend) into a cache directory that is
# reused across runs. The external-relay tests (tests/external_relay.rs) run this binary.
#
#   MOQ_RELAY_ROOT  install root (default: $HOME/.cache/moq-ffi/moq-relay-0.17.10)
#
# The binary ends up at $MOQ_RELAY_ROOT/bin/moq-relay; the tests find it there by default, or via
# MOQ_RELAY_BIN. Never pass --locked: the upstream lockfile pins a crate version (webpki-roots
# 1.0.11) missing from the registry here.
set -euo pipefail

VERSION="0.17.10"
ROOT="${MOQ_RELAY_ROOT:-$HOME/.cache/moq-ffi/moq-relay-$VERSION}"
BIN="$ROOT/bin/moq-relay"

if [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "moq-relay $VERSION already installed: $BIN"
    exit 0
fi

mkdir -p "$ROOT"
echo "installing moq-relay $VERSION into $ROOT (takes several minutes the first time)..." >&2
start=$(date +%s)
cargo install "moq-relay@$VERSION" --no-default-features --features noq --root "$ROOT"
end=$(date +%s)

if ! "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "error: $BIN does not report version $VERSION after install" >&2
    "$BIN" --version >&2 || true
    exit 1
fi
echo "installed in $((end - start)) s" >&2
echo "moq-relay $VERSION installed: $BIN"
