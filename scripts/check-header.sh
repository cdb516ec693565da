#!/usr/bin/env bash
# Header hygiene and ABI checks (issue 6, part 1). Each check prints one line; any failure exits 1.
#
#  1. include/moq_ffi.h is what cbindgen generates from the sources (not stale);
#  2. its structure: include guard, extern "C" guards, stdint.h/stddef.h/stdbool.h, the
#     MOQ_FFI_API export macro on every function, only MOQ_/Moq-prefixed macros and types;
#  3. MOQ_FFI_VERSION_MAJOR/MINOR/PATCH and MOQ_FFI_ABI_VERSION agree with Cargo.toml's version;
#  4. it compiles warning-free (-Wall -Wextra -Wpedantic -Werror and more) as C99, C11, C++17 and
#     C++20, included twice, for the shared and the static (MOQ_FFI_STATIC) library;
#  5. MOQ_FFI_API expands to __declspec(dllimport) on Windows, __declspec(dllexport) when building
#     the DLL, and to nothing with MOQ_FFI_STATIC (preprocessor check);
#  6. a program linked against the debug libmoq_ffi.so sees moq_abi_version() equal to the
#     header's MOQ_FFI_ABI_VERSION, and MOQ_FFI_ABI_COMPATIBLE accepts/refuses the right versions;
#  7. the shared library exports exactly the moq_* functions the header declares (nm -D).
set -euo pipefail
# grep that reads its whole input: `grep -q` exits at the first match, which makes the writer of
# a pipeline die of SIGPIPE and, under pipefail, the pipeline fail.
has() { grep "$@" >/dev/null; }
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
H=include/moq_ffi.h
checks=0
ok() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

need_apt gcc g++ nm=binutils

# 1. freshness
bash scripts/gen-header.sh --check >/dev/null || fail "include/moq_ffi.h is stale (run scripts/gen-header.sh)"
ok "header is up to date with the Rust sources"

# 2. structure
has '^#ifndef MOQ_FFI_H$' $H && has '^#define MOQ_FFI_H$' $H && tail -n 3 $H | has '^#endif' \
  || fail "include guard MOQ_FFI_H missing"
ok "include guard"
has '^extern "C" {' $H && has '^}  // extern "C"' $H || fail 'extern "C" guards missing'
[ "$(grep -c '^#ifdef __cplusplus' $H)" -ge 2 ] || fail 'extern "C" not wrapped in #ifdef __cplusplus'
ok 'extern "C" guards'
for inc in stdint.h stddef.h stdbool.h; do has "^#include <$inc>" $H || fail "missing #include <$inc>"; done
ok "includes stdint.h, stddef.h, stdbool.h"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One statement per line, comments gone, MOQ_FFI_API made visible as a marker.
gcc -E -P -DMOQ_FFI_API=MOQ_FFI_API_MARK -Iinclude -x c $H | tr '\n' ' ' | tr ';' '\n' | tr -s ' ' \
  | sed -e 's/^ //' -e 's/^}* *//' -e 's/^extern "C" { *//' >"$tmp/statements"
grep -E '^[^(]*[ *]moq_[a-z_0-9]+\(' "$tmp/statements" | grep -v '^typedef' >"$tmp/functions" || true
decls=$(wc -l <"$tmp/functions")
[ "$decls" -gt 50 ] || fail "only $decls function declarations found"
undecorated=$(grep -v '^MOQ_FFI_API_MARK ' "$tmp/functions" || true)
[ -z "$undecorated" ] || fail "functions without MOQ_FFI_API: $undecorated"
grep -oE '[ *]moq_[a-z_0-9]+\(' "$tmp/functions" | tr -d ' *(' | sort -u >"$tmp/declared"
ok "all $decls function declarations carry MOQ_FFI_API"
bad_macros=$(grep -oE '^#[ ]*define[ ]+[A-Za-z_0-9]+' $H | awk '{print $NF}' | grep -vE '^MOQ_' || true)
[ -z "$bad_macros" ] || fail "macros outside the MOQ_ namespace: $bad_macros"
bad_types=$(grep -oE '^(} [A-Za-z_0-9]+;|typedef .*\(\*[A-Za-z_0-9]+\)|typedef [a-z_0-9 ]+ [A-Za-z_0-9]+;)' $H \
  | grep -oE '[A-Za-z_0-9]+(\)|;)$' | tr -d ');' | grep -vE '^Moq' || true)
[ -z "$bad_types" ] || fail "types outside the Moq namespace: $bad_types"
ok "every macro is MOQ_-prefixed and every type Moq-prefixed"

# 3. version macros vs Cargo.toml
cargo_version=$(grep -m1 -E '^version *= *"' Cargo.toml | sed -E 's/^version *= *"([^"]+)".*/\1/')
IFS=. read -r vmaj vmin vpat <<<"${cargo_version%%[-+]*}"
macro() { grep -E "^#define $1 " $H | awk '{print $3}'; }
[ "$(macro MOQ_FFI_VERSION_MAJOR)" = "$vmaj" ] || fail "MOQ_FFI_VERSION_MAJOR=$(macro MOQ_FFI_VERSION_MAJOR), Cargo.toml $cargo_version"
[ "$(macro MOQ_FFI_VERSION_MINOR)" = "$vmin" ] || fail "MOQ_FFI_VERSION_MINOR=$(macro MOQ_FFI_VERSION_MINOR), Cargo.toml $cargo_version"
[ "$(macro MOQ_FFI_VERSION_PATCH)" = "$vpat" ] || fail "MOQ_FFI_VERSION_PATCH=$(macro MOQ_FFI_VERSION_PATCH), Cargo.toml $cargo_version"
[ "$(macro MOQ_FFI_ABI_VERSION)" = "$(((vmaj << 16) | (vmin << 8) | vpat))" ] || fail "MOQ_FFI_ABI_VERSION does not pack $cargo_version"
ok "version macros match Cargo.toml ($cargo_version, ABI $(macro MOQ_FFI_ABI_VERSION))"

cat >"$tmp/use.c" <<'EOF'
#include "moq_ffi.h"
#include "moq_ffi.h" /* included twice on purpose: the guard must hold */
#include <string.h>
#if !defined(MOQ_FFI_VERSION_MAJOR) || !defined(MOQ_FFI_VERSION_MINOR) || !defined(MOQ_FFI_VERSION_PATCH)
#error version macros missing
#endif
#if MOQ_FFI_ABI_VERSION != ((MOQ_FFI_VERSION_MAJOR << 16) | (MOQ_FFI_VERSION_MINOR << 8) | MOQ_FFI_VERSION_PATCH)
#error MOQ_FFI_ABI_VERSION does not pack the version macros
#endif
int check_use(void);
int check_use(void) {
    MoqClientConfig config;
    MoqResult r = {MOQ_OK, NULL};
    memset(&config, 0, sizeof config);
    config.connect_timeout_ms = 1000u;
    (void)r;
    return moq_version() == NULL || !MOQ_FFI_ABI_COMPATIBLE(moq_abi_version()) || config.connect_timeout_ms == 0;
}
EOF
# 4. compile as C99, C11, C++17, C++20, shared and static flavour
CWARN=(-Wall -Wextra -Wpedantic -Werror -Wshadow -Wundef -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes -Wconversion -Wsign-conversion)
CXXWARN=(-Wall -Wextra -Wpedantic -Werror -Wshadow -Wundef -Wcast-qual -Wconversion -Wsign-conversion -Wzero-as-null-pointer-constant -Wold-style-cast)
for std in c99 c11; do
  for flavour in "" -DMOQ_FFI_STATIC; do
    gcc -std=$std "${CWARN[@]}" $flavour -Iinclude -c "$tmp/use.c" -o "$tmp/use.o" || fail "header does not compile as $std $flavour"
  done
  ok "header compiles warning-free as $std (shared and MOQ_FFI_STATIC)"
done
for std in c++17 c++20; do
  for flavour in "" -DMOQ_FFI_STATIC; do
    g++ -std=$std "${CXXWARN[@]}" $flavour -Iinclude -x c++ -c "$tmp/use.c" -o "$tmp/use.o" || fail "header does not compile as $std $flavour"
  done
  ok "header compiles warning-free as $std (shared and MOQ_FFI_STATIC)"
done

# 5. export macro on Windows / static (preprocessor only: the expansion is what matters)
pp() { gcc -E -P -Iinclude "$@" -x c "$H" | tr -s ' ' | grep -E ' moq_abi_version\(void\);'; }
pp -D_WIN32 | has '^__declspec(dllimport) uint32_t moq_abi_version(void);' || fail "no dllimport on Windows"
pp -D_WIN32 -DMOQ_FFI_BUILDING | has '^__declspec(dllexport) uint32_t' || fail "no dllexport when building the DLL"
pp -D_WIN32 -DMOQ_FFI_STATIC | has '^ *uint32_t moq_abi_version' || fail "MOQ_FFI_STATIC still decorates on Windows"
pp -DMOQ_FFI_STATIC | has '^ *uint32_t moq_abi_version' || fail "MOQ_FFI_STATIC still decorates"
pp | has 'visibility("default")' || fail "no default visibility on gcc"
n_import=$(gcc -E -P -Iinclude -D_WIN32 -x c $H | grep -c '__declspec(dllimport)')
[ "$n_import" -eq "$decls" ] || fail "$n_import of $decls declarations are dllimport on Windows"
ok "MOQ_FFI_API: dllimport ($n_import/$decls) / dllexport on Windows, none with MOQ_FFI_STATIC, visibility default on gcc"

# 6. run time: library and header agree, MOQ_FFI_ABI_COMPATIBLE's rule
cargo build --quiet
LIB=$LIBDIR/libmoq_ffi.so
cat >"$tmp/abi.c" <<'EOF'
#include "moq_ffi.h"
#include <stdio.h>
int main(void) {
    uint32_t lib = moq_abi_version();
    uint32_t h = MOQ_FFI_ABI_VERSION;
    int bad = 0;
    if (lib != h) { printf("library ABI %u != header %u\n", lib, h); bad = 1; }
    if (!MOQ_FFI_ABI_COMPATIBLE(lib)) { printf("own library refused\n"); bad = 1; }
    if (!MOQ_FFI_ABI_COMPATIBLE(h + 1)) { printf("newer patch refused\n"); bad = 1; }
    if (MOQ_FFI_ABI_COMPATIBLE(h + 0x10000)) { printf("next major accepted\n"); bad = 1; }
    if (MOQ_FFI_VERSION_MAJOR == 0 && MOQ_FFI_ABI_COMPATIBLE(h + 0x100)) { printf("0.x next minor accepted\n"); bad = 1; }
    if (MOQ_FFI_VERSION_MINOR > 0 && MOQ_FFI_ABI_COMPATIBLE(h - 0x100)) { printf("older minor accepted\n"); bad = 1; }
    printf("moq_abi_version()=0x%06x header=0x%06x\n", lib, h);
    return bad;
}
EOF
gcc -std=c99 -Wall -Wextra -Werror -Iinclude "$tmp/abi.c" -L"$LIBDIR" -lmoq_ffi -Wl,-rpath,"$LIBDIR" -o "$tmp/abi"
timeout 30 "$tmp/abi" || fail "ABI version check"
ok "moq_abi_version() matches MOQ_FFI_ABI_VERSION; MOQ_FFI_ABI_COMPATIBLE accepts newer patches, refuses other ABI lines"

# 7. exported symbols
nm -D --defined-only "$LIB" | awk '{print $NF}' | sort -u >"$tmp/exported"
others=$(grep -v '^moq_' "$tmp/exported" || true)
[ -z "$others" ] || fail "libmoq_ffi.so exports non-moq_ symbols: $(echo $others | head -c 2000)"
diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff" || fail "declared vs exported differ: $(cat "$tmp/diff")"
ok "nm -D: $(wc -l <"$tmp/exported") defined dynamic symbols, all moq_*, exactly the $(wc -l <"$tmp/declared") functions the header declares"
echo "check-header: $checks checks passed"
