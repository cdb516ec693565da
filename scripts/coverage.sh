#!/usr/bin/env bash
# Line coverage of the library (src/), from the one instrumented build the whole suite uses.
#
#   scripts/coverage.sh report [THRESHOLD]   what scripts/test-all.sh runs last: merges the
#                                            profiles its steps wrote (Rust tests, C and C++ under
#                                            ASan and valgrind, dlopen, fault loop, guide examples,
#                                            race test) and reports
#   scripts/coverage.sh run [THRESHOLD]      standalone: builds instrumented, runs `cargo test`,
#                                            reports (the Rust tests' coverage alone)
#
# THRESHOLD: percent of src/'s lines (default 85). How: scripts/coverage-wrap.sh compiles this
# package's crates with -Cinstrument-coverage (dependencies as usual, so nothing is built twice);
# every process that runs our code writes a profile to $TARGET/coverage/profiles/; llvm-profdata
# merges them and llvm-cov reads the line counts out of the test binaries and libmoq_ffi.so.
# LLVM 19's tools (Debian's llvm-19, installed here if missing) read the profiles and coverage
# maps of rustc 1.95 (LLVM 22). Prints every file's figure (lowest first), the files under 80%,
# the total, and exits non-zero below THRESHOLD or when no profile was written.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
mode=${1:-report}
threshold=${2:-85}
start=$SECONDS
need_apt llvm-profdata-19=llvm-19
coverage_env

if [ "$mode" = run ]; then
  rm -rf "$MOQ_COVERAGE_DIR/profiles"
  step "cargo test (instrumented)" cargo test --no-fail-fast || echo "note: a test failed (coverage still reported)"
elif [ "$mode" != report ]; then
  echo "usage: $0 report|run [THRESHOLD]" >&2
  exit 2
fi

profiles=("$MOQ_COVERAGE_DIR"/profiles/*.profraw)
[ -e "${profiles[0]}" ] || { echo "FAILED: no profiles in $MOQ_COVERAGE_DIR/profiles (was the suite built with scripts/coverage-wrap.sh?)" >&2; exit 1; }
merged=$MOQ_COVERAGE_DIR/merged.profdata
llvm-profdata-19 merge -sparse "${profiles[@]}" -o "$merged"

# Every binary that carries our code's coverage map: the test executables and the library. The
# suite lists them right after its build (scripts/test-all.sh), so a source edited while the
# suite runs cannot make this list binaries the profiles did not come from.
list=$MOQ_COVERAGE_DIR/executables.txt
[ "$mode" = run ] || [ -s "$list" ] || list_test_executables >"$list"
[ "$mode" = report ] || list_test_executables >"$list"
objects=()
while IFS= read -r exe; do objects+=(-object "$exe"); done <"$list"
objects+=(-object "$LIBDIR/libmoq_ffi.so")
report=$MOQ_COVERAGE_DIR/coverage.json
llvm-cov-19 export -summary-only -instr-profile="$merged" "${objects[@]}" \
  -ignore-filename-regex='(/\.cargo/|/rustc/|/tests/|/benches/|/fuzz/|/src/bin/)' >"$report" 2>"$MOQ_COVERAGE_DIR/llvm-cov.log"

result=0
python3 - "$report" "$threshold" "$ROOT" "${#profiles[@]}" <<'EOF' || result=$?
import json, sys
report, threshold, root, nprofiles = sys.argv[1], float(sys.argv[2]), sys.argv[3].rstrip("/") + "/", sys.argv[4]
rows, covered, count = [], 0, 0
for data in json.load(open(report))["data"]:
    for f in data["files"]:
        rel = f["filename"].replace(root, "")
        lines = f["summary"]["lines"]
        if not rel.startswith("src/") or lines["count"] == 0:
            continue
        rows.append((100.0 * lines["covered"] / lines["count"], rel, lines["covered"], lines["count"]))
        covered += lines["covered"]
        count += lines["count"]
rows.sort()
for pct, rel, c, n in rows:
    print(f"  {pct:6.1f}%  {c:5}/{n:<5}  {rel}")
low = [r for r in rows if r[0] < 80.0]
print(f"files under 80%: {len(low)}" + ("" if not low else ": " + ", ".join(f"{r[1]} ({r[0]:.1f}%)" for r in low)))
total = 100.0 * covered / max(count, 1)
print(f"TOTAL line coverage of src/: {total:.2f}% ({covered}/{count} lines, {nprofiles} profiles), threshold {threshold:.0f}%")
sys.exit(0 if total >= threshold else 3)
EOF
echo "coverage: done in $((SECONDS - start)) s"
if [ "$result" -ne 0 ]; then
  echo "FAILED: coverage below ${threshold}%" >&2
  exit 1
fi
