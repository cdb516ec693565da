#!/usr/bin/env bash
# RUSTC_WRAPPER of the test suite (scripts/test-all.sh, scripts/coverage.sh). For this package's
# own crates (the library, its binary, tests, benches, the fuzz targets: cargo passes their paths
# relative), it adds
#   -Cinstrument-coverage   with MOQ_COVERAGE_BUILD=1 (line coverage; scripts/coverage.sh reads
#                           the profiles), and
#   -Dwarnings              with MOQ_DENY_WARNINGS=1 (the suite builds with clippy-driver as
#                           RUSTC_WORKSPACE_WRAPPER, so this makes every rustc and clippy
#                           warning an error, as `cargo clippy -- -D warnings` would).
# Dependencies are compiled exactly as cargo asked, so their build is the one a plain
# `cargo build` makes and the suite builds everything once. src/lib.rs names MOQ_COVERAGE_BUILD,
# so cargo rebuilds the crate when it changes and never mistakes one kind of build for the other.
#
# bash, not sh: dash drops environment variables whose names are not shell identifiers, such as
# cargo's CARGO_BIN_EXE_moq-relay.
rustc=$1
shift
ours=0
for arg in "$@"; do
  case "$arg" in
    src/*.rs | tests/*.rs | benches/*.rs | fuzz/*.rs) ours=1; break ;;
  esac
done
extra=()
if [ "$ours" = 1 ]; then
  [ "${MOQ_COVERAGE_BUILD:-}" = 1 ] && extra+=(-Cinstrument-coverage)
  [ "${MOQ_DENY_WARNINGS:-}" = 1 ] && extra+=(-Dwarnings)
fi
exec "$rustc" "$@" "${extra[@]}"
