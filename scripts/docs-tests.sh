#!/usr/bin/env bash
# Keeps the guide's code honest: every C/C++/CMake/C# code block in docs/guide/*.md is a copy of
# (a region of) a file that is built, and those files compile and run.
#
#   scripts/docs-tests.sh         check (what CI runs)
#   scripts/docs-tests.sh --fix   rewrite the code blocks from their files, then check
#
# In the guide, a block is tied to its source by the line before it:
#     <!-- snippet: docs/examples/quickstart.c#setup -->
# (#region optional: without it, the whole file minus region markers). In the source, a region
# is delimited by lines `/* [name] */` ... `/* [/name] */` (or `// [name]` ... `// [/name]`);
# the block holds the lines in between, dedented. A code block in one of these languages
# without a snippet line fails the check, as does a block that differs from its source, and a
# docs/examples file that no block shows.
#
# Then every docs/examples/*.c is compiled as C11 and every *.cpp as C++17 with -Wall -Wextra
# -Wpedantic -Werror against include/ and the debug library, and run (each bounded by timeout 60,
# each must exit 0). cmake/consumer/CMakeLists.txt and cmake/unreal/moq_ffi.Build.cs, which the
# guide also shows, are built by scripts/package.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
need_apt python3 gcc g++
start=$SECONDS

python3 - "${1:-}" <<'PY'
import os, re, sys, textwrap, glob
fix = sys.argv[1] == "--fix"
CHECKED = {"c", "cpp", "c++", "cmake", "cs", "csharp"}
marker_re = re.compile(r"^\s*(?:/\*|//)\s*\[(/?)([A-Za-z0-9_-]+)\]\s*(?:\*/)?\s*$")

def extract(path, region):
    lines = open(path).read().split("\n")
    if region is None:
        body = [l for l in lines if not marker_re.match(l)]
        while body and body[-1] == "":
            body.pop()
        return "\n".join(body)
    inside, out, found = False, [], False
    for l in lines:
        m = marker_re.match(l)
        if m and m.group(2) == region:
            if m.group(1) == "":
                inside, found = True, True
                continue
            inside = False
            continue
        if inside and not marker_re.match(l):
            out.append(l)
    if not found:
        raise SystemExit(f"FAILED: region [{region}] not found in {path}")
    return textwrap.dedent("\n".join(out)).strip("\n")

errors, blocks, used = [], 0, set()
for md in sorted(glob.glob("docs/guide/*.md")):
    text = open(md).read()
    lines = text.split("\n")
    out, i, changed = [], 0, False
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^```\s*([A-Za-z+#]*)\s*$", line)
        if not fence or fence.group(1) == "":
            out.append(line); i += 1; continue
        lang = fence.group(1).lower()
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if j == len(lines):
            errors.append(f"{md}:{i+1}: unterminated code block"); break
        body = "\n".join(lines[i+1:j])
        prev = next((l for l in reversed(out) if l.strip()), "")
        m = re.match(r"^<!--\s*snippet:\s*([^#\s]+)(?:#([A-Za-z0-9_-]+))?\s*-->$", prev.strip())
        if lang in CHECKED:
            blocks += 1
            if not m:
                errors.append(f"{md}:{i+1}: ```{lang} block without a <!-- snippet: FILE#region --> line")
            else:
                src, region = m.group(1), m.group(2)
                if not os.path.exists(src):
                    errors.append(f"{md}:{i+1}: snippet source {src} does not exist")
                else:
                    used.add(os.path.normpath(src))
                    want = extract(src, region)
                    if body != want:
                        if fix:
                            body, changed = want, True
                        else:
                            errors.append(f"{md}:{i+1}: block differs from {src}" + (f"#{region}" if region else "") + " (run scripts/docs-tests.sh --fix)")
        out.append(line); out.extend(body.split("\n") if body else []); out.append(lines[j])
        i = j + 1
    if changed:
        open(md, "w").write("\n".join(out))
        print(f"fixed {md}")
for ex in sorted(glob.glob("docs/examples/*.c") + glob.glob("docs/examples/*.cpp")):
    if os.path.normpath(ex) not in used:
        errors.append(f"{ex} is not shown anywhere in docs/guide")
if errors:
    print("\n".join("FAILED: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"ok: {blocks} code blocks in docs/guide match their sources; every docs/examples program is shown")
PY

cargo build --quiet
OUT=$TARGET/docs-examples
mkdir -p "$OUT"
LINK=(-L"$LIBDIR" -lmoq_ffi -Wl,-rpath,"$LIBDIR" -lpthread)
n=0
for src in docs/examples/*.c docs/examples/*.cpp; do
  name=$(basename "$src")
  exe=$OUT/${name%.*}-${name##*.}
  if [[ $src == *.c ]]; then
    gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -I"$ROOT/include" "$src" "${LINK[@]}" -o "$exe" || { echo "FAILED: $src does not compile" >&2; exit 1; }
  else
    g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -I"$ROOT/include" "$src" "${LINK[@]}" -o "$exe" || { echo "FAILED: $src does not compile" >&2; exit 1; }
  fi
  status=0
  timeout 60 "$exe" >"$exe.log" 2>&1 || status=$?
  [ "$status" -eq 0 ] || { cat "$exe.log"; echo "FAILED: $src exited $status" >&2; exit 1; }
  n=$((n + 1))
  echo "ok: $src compiles warning-free and runs (exit 0)"
done
echo "docs-tests: all code blocks in sync, $n example programs built and run in $((SECONDS - start)) s"
