#!/usr/bin/env bash
# Tests the command-line tools (moq-pub, moq-sub, moq-relay-lite) end to end on loopback.
#
#   scripts/tools-tests.sh [BINDIR]
#
# BINDIR holds the three tools (default: target/cmake-build, built by `cmake --build`; when it
# is missing there the script configures and builds the CMake project first). scripts/package.sh
# runs this against the bin/ of the unpacked SDK archive. Checks:
#   --version of each tool; usage errors exit 2;
#   lines from stdin -> moq-pub -> relay -> moq-sub --lines: byte-identical output;
#   a binary file (--file, 4 KiB chunks, groups of 8) -> moq-sub: byte-identical;
#   --generate with --rate: all objects arrive, the progress line on stderr shows them;
#   --insecure connects; a wrong --fingerprint and a foreign --ca are refused (exit 1);
#   moq-sub on a track nobody publishes exits 1 (not found).
# Every process is bounded by `timeout`; the relay listens on 127.0.0.1, port 0.
set -euo pipefail
# grep that reads its whole input: `grep -q` exits at the first match, which makes the writer of
# a pipeline die of SIGPIPE and, under pipefail, the pipeline fail.
has() { grep "$@" >/dev/null; }
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
BIN=${1:-$TARGET/cmake-build}
if [ ! -x "$BIN/moq-pub" ] && [ $# -eq 0 ]; then
  command -v cmake >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake; }
  cmake -S "$ROOT" -B "$BIN" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BIN" -j2
fi
for t in moq-pub moq-sub moq-relay-lite; do [ -x "$BIN/$t" ] || { echo "FAILED: $BIN/$t missing" >&2; exit 1; }; done

checks=0
ok() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
start=$SECONDS
work=$(mktemp -d)
relay_pid=""
cleanup() {
  if [ -n "$relay_pid" ]; then kill "$relay_pid" 2>/dev/null || true; wait "$relay_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- versions and usage
for t in moq-pub moq-sub moq-relay-lite; do
  out=$(timeout 10 "$BIN/$t" --version) || fail "$t --version"
  echo "$out" | has -E "^$t [0-9]+\.[0-9]+\.[0-9]+ \(ABI 0x[0-9a-f]{6}\), library moq-ffi " || fail "$t --version printed: $out"
done
ok "--version of moq-pub, moq-sub, moq-relay-lite"
status=0; timeout 10 "$BIN/moq-pub" >/dev/null 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "moq-pub without arguments exited $status, want 2"
status=0; timeout 10 "$BIN/moq-sub" --bogus a b c >/dev/null 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "moq-sub --bogus exited $status, want 2"
ok "usage errors exit 2"

# --- the relay
timeout 300 "$BIN/moq-relay-lite" --bind 127.0.0.1:0 >"$work/relay.out" 2>"$work/relay.err" &
relay_pid=$!
for _ in $(seq 1 100); do has '^fingerprint ' "$work/relay.out" 2>/dev/null && break; sleep 0.1; done
URL=$(awk '$1 == "url" {print $2}' "$work/relay.out")
FP=$(awk '$1 == "fingerprint" {print $2}' "$work/relay.out")
[ -n "$URL" ] && [ ${#FP} -eq 64 ] || fail "moq-relay-lite did not print url/fingerprint: $(cat "$work/relay.out" "$work/relay.err")"
ok "moq-relay-lite listens at $URL"

# round_trip NAME TRACK "PUB ARGS" "SUB ARGS" INPUT_FILE EXPECTED_FILE [COUNT]
# Starts moq-sub (waiting for the track), then moq-pub fed from a FIFO that is only written
# once moq-sub reported "subscribed", so every object is live for the subscriber.
round_trip() {
  local name=$1 track=$2 pub_args=$3 sub_args=$4 input=$5 expected=$6
  local fifo=$work/$name.fifo
  mkfifo "$fifo"
  # shellcheck disable=SC2086
  timeout 60 "$BIN/moq-sub" --wait $sub_args --fingerprint "$FP" "$URL" tools "$track" \
    >"$work/$name.out" 2>"$work/$name.sub.err" &
  local sub_pid=$!
  # shellcheck disable=SC2086
  timeout 60 "$BIN/moq-pub" $pub_args --fingerprint "$FP" "$URL" tools "$track" <"$fifo" 2>"$work/$name.pub.err" &
  local pub_pid=$!
  exec 7>"$fifo"
  for _ in $(seq 1 200); do has subscribed "$work/$name.sub.err" && break; sleep 0.05; done
  has subscribed "$work/$name.sub.err" || { exec 7>&-; fail "$name: moq-sub never subscribed: $(cat "$work/$name.sub.err")"; }
  sleep 0.3 # the relay's upstream subscription reaches the publisher a few ms after SUBSCRIBED
  cat "$input" >&7
  exec 7>&-
  local pub_status=0 sub_status=0
  wait "$pub_pid" || pub_status=$?
  wait "$sub_pid" || sub_status=$?
  [ "$pub_status" -eq 0 ] || fail "$name: moq-pub exited $pub_status: $(cat "$work/$name.pub.err")"
  [ "$sub_status" -eq 0 ] || fail "$name: moq-sub exited $sub_status: $(cat "$work/$name.sub.err")"
  cmp -s "$expected" "$work/$name.out" || fail "$name: output differs from input ($(wc -c <"$work/$name.out") vs $(wc -c <"$expected") bytes)"
}

seq 1 500 | sed 's/^/line /' >"$work/lines.txt"
round_trip lines lines "--lines" "--lines --count 500" "$work/lines.txt" "$work/lines.txt"
tail -c 300 "$work/lines.sub.err" | tr '\r' '\n' | has -E 'moq-sub: 500 objects, [0-9.]+ obj/s, [0-9.]+ KiB/s, drops 0, latency [0-9.-]+ ms' \
  || fail "lines: progress line missing: $(tr '\r' '\n' <"$work/lines.sub.err" | tail -n 3)"
ok "500 lines stdin -> moq-pub --lines -> moq-sub --lines: identical; progress line shows 500 objects, drops 0, latency"

head -c 300000 /dev/urandom >"$work/blob.bin"
# 300000 bytes in 4096-byte chunks = 74 objects (the last one shorter), groups of 8 objects.
round_trip blob blob "--size 4096 --group 8 --file -" "--count 74" "$work/blob.bin" "$work/blob.bin"
ok "300000-byte binary file -> moq-pub --size 4096 --group 8 -> moq-sub: byte-identical"

# Generated data at a fixed rate, ended by the publisher (moq-sub exits 0 on ENDED).
timeout 60 "$BIN/moq-sub" --wait --fingerprint "$FP" "$URL" tools gen >"$work/gen.out" 2>"$work/gen.sub.err" &
sub_pid=$!
# --delay: the publisher announces at once and waits before its first object, so moq-sub --wait
# is live by then.
timeout 60 "$BIN/moq-pub" --generate 200 --size 100 --rate 400 --delay 1500 --fingerprint "$FP" "$URL" tools gen \
  2>"$work/gen.pub.err" &
pub_pid=$!
status=0; wait "$pub_pid" || status=$?
[ "$status" -eq 0 ] || fail "moq-pub --generate exited $status: $(cat "$work/gen.pub.err")"
status=0; wait "$sub_pid" || status=$?
[ "$status" -eq 0 ] || fail "moq-sub (ended by the publisher) exited $status: $(cat "$work/gen.sub.err")"
[ "$(wc -c <"$work/gen.out")" -eq 20000 ] || fail "generated: got $(wc -c <"$work/gen.out") bytes, want 20000"
has 'track ended' "$work/gen.sub.err" || fail "moq-sub did not report the end of the track"
tr '\r' '\n' <"$work/gen.pub.err" | has -E 'moq-pub: 200 objects, [0-9.]+ obj/s' || fail "moq-pub progress line: $(cat "$work/gen.pub.err")"
ok "moq-pub --generate 200 --rate 400 --delay 1500: 20000 bytes arrived, moq-sub exits 0 on 'track ended'"

# TLS flags
status=0; timeout 30 "$BIN/moq-sub" --insecure --quiet --duration 0.5 "$URL" tools nothing >/dev/null 2>"$work/insecure.err" || status=$?
has 'cannot connect' "$work/insecure.err" && fail "--insecure did not connect: $(cat "$work/insecure.err")"
ok "--insecure connects to the self-signed relay"
bad_fp=$(printf '%064d' 0)
status=0; timeout 30 "$BIN/moq-sub" --fingerprint "$bad_fp" --connect-timeout 3000 "$URL" tools t >/dev/null 2>"$work/badfp.err" || status=$?
[ "$status" -eq 1 ] && has 'cannot connect' "$work/badfp.err" || fail "wrong --fingerprint: exit $status, $(cat "$work/badfp.err")"
ok "a wrong --fingerprint is refused (exit 1: $(head -c 120 "$work/badfp.err" | tr '\n' ' '))"
command -v openssl >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" \
  -days 2 -subj /CN=foreign-ca 2>/dev/null
status=0; timeout 30 "$BIN/moq-pub" --ca "$work/ca.pem" --connect-timeout 3000 --generate 1 "$URL" tools t >/dev/null 2>"$work/ca.err" || status=$?
[ "$status" -eq 1 ] && has 'cannot connect' "$work/ca.err" || fail "foreign --ca: exit $status, $(cat "$work/ca.err")"
status=0; timeout 30 "$BIN/moq-pub" --ca "$work/ca.pem" --insecure "$URL" tools t >/dev/null 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "--ca with --insecure accepted (exit $status)"
ok "--ca with a foreign CA is refused; --ca together with --insecure is a usage error"

status=0; timeout 30 "$BIN/moq-sub" --fingerprint "$FP" --connect-timeout 3000 "$URL" nobody here >/dev/null 2>"$work/nf.err" || status=$?
[ "$status" -eq 1 ] && has 'not found' "$work/nf.err" || fail "unknown track: exit $status, $(cat "$work/nf.err")"
ok "moq-sub on an unknown track exits 1 (not found)"

kill "$relay_pid" 2>/dev/null || true
status=0; wait "$relay_pid" || status=$?
relay_pid=""
[ "$status" -eq 0 ] || fail "moq-relay-lite exited $status on SIGTERM"
ok "moq-relay-lite stops cleanly on SIGTERM"
echo "tools-tests: $checks checks passed in $((SECONDS - start)) s"
