#!/usr/bin/env bash
# Builds the SDK archive and the Unreal Engine ThirdParty layout, then proves both work from the
# unpacked archives alone.
#
#   scripts/package.sh            build + verify   (output in target/package/)
#   scripts/package.sh --no-verify   build only
#   scripts/package.sh --verify-only re-verify the archives built before
#
# MOQ_PACKAGE_PROFILE=dev packages the dev build of the library instead of the release one (CI
# does: the tests built it already, so the round trip costs no second full build; a shipped SDK
# uses the default, release).
#
# Produces
#   target/package/moq_ffi-<version>-<os>-<arch>.tar.gz
#       include/            moq_ffi.h, moq_ffi.hpp
#       lib/                libmoq_ffi.so (shared), libmoq_ffi.a (static), both debug-stripped
#       lib/cmake/moq_ffi/  moq_ffiConfig.cmake (+ Version, system libs): moq_ffi::moq_ffi,
#                           moq_ffi::moq_ffi_static
#       lib/pkgconfig/      moq_ffi.pc (shared), moq_ffi-static.pc (static)
#       bin/                moq-pub, moq-sub, moq-relay-lite (RUNPATH $ORIGIN/../lib)
#       share/moq_ffi/examples/consumer/   the consumer project used below
#       share/doc/moq_ffi/  licenses, the guide (docs/guide, docs/examples)
#       LICENSE, README.txt, SHA256SUMS
#   target/package/moq_ffi-<version>-unreal-<Platform>.tar.gz
#       ThirdParty/moq_ffi/{include, lib/<Platform>, bin/<Platform>, moq_ffi.Build.cs, LICENSE}
#
# Verification (from a fresh directory holding only the unpacked archive): SHA256SUMS, exported
# symbols (moq_* only), the consumer built with CMake find_package (shared, static, C++ wrapper)
# and with pkg-config (shared, static), each run against the embedded relay; the shipped tools
# (scripts/tools-tests.sh on bin/); the Unreal layout (paths of the Build.cs exist, a program
# compiled and linked the way UnrealBuildTool would, run; the Build.cs compiled with mcs against
# stand-ins for the UnrealBuildTool types it uses).
set -euo pipefail
# grep that reads its whole input: `grep -q` exits at the first match, which makes the writer of
# a pipeline die of SIGPIPE and, under pipefail, the pipeline fail.
has() { grep "$@" >/dev/null; }
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
PKG=$TARGET/package
VERIFY=1 BUILD=1
case "${1:-}" in
  --no-verify) VERIFY=0 ;;
  --verify-only) BUILD=0 ;; # re-check archives built earlier
  "") ;;
  *) echo "usage: $0 [--no-verify|--verify-only]" >&2; exit 2 ;;
esac
start_all=$SECONDS
checks=0
ok() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
step() { echo "==> $*"; }

# --- tools this needs (idempotent; CI runs as root on a fresh machine)
need=()
for tool in cmake pkg-config gcc g++ make openssl file; do
  command -v $tool >/dev/null 2>&1 || case $tool in
    pkg-config) need+=(pkg-config) ;; g++) need+=(g++) ;; *) need+=($tool) ;;
  esac
done
command -v mcs >/dev/null 2>&1 || need+=(mono-mcs)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  step "apt-get install ${need[*]}"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

VERSION=$(grep -m1 -E '^version *= *"' Cargo.toml | sed -E 's/^version *= *"([^"]+)".*/\1/')
OS=$(uname -s | tr '[:upper:]' '[:lower:]')
ARCH=$(uname -m)
case "$(uname -s)" in Linux) UE_PLATFORM=Linux; SO=libmoq_ffi.so ;; Darwin) UE_PLATFORM=Mac; SO=libmoq_ffi.dylib ;; *) UE_PLATFORM=Win64; SO=moq_ffi.dll ;; esac
NAME=moq_ffi-$VERSION-$OS-$ARCH
STAGE=$PKG/stage/$NAME
ARCHIVE=$PKG/$NAME.tar.gz
UE_NAME=moq_ffi-$VERSION-unreal-$UE_PLATFORM
UE_ARCHIVE=$PKG/$UE_NAME.tar.gz

if [ "$BUILD" = 1 ]; then
# --- 1. build and install with the CMake project (which drives cargo build --release)
t=$SECONDS
step "cmake configure/build/install"
rm -rf "$PKG/stage" "$PKG/unreal"
mkdir -p "$PKG"
cmake -S "$ROOT" -B "$PKG/build" -DCMAKE_BUILD_TYPE=Release -DMOQ_FFI_CARGO_PROFILE="${MOQ_PACKAGE_PROFILE:-release}" >"$PKG/cmake.log" 2>&1 || { cat "$PKG/cmake.log"; fail "cmake configure"; }
cmake --build "$PKG/build" -j2 >>"$PKG/cmake.log" 2>&1 || { tail -50 "$PKG/cmake.log"; fail "cmake build"; }
cmake --install "$PKG/build" --prefix "$STAGE" >>"$PKG/cmake.log" 2>&1 || { tail -50 "$PKG/cmake.log"; fail "cmake install"; }
echo "    build + install: $((SECONDS - t)) s"

# --- 2. complete the SDK tree
strip --strip-debug "$STAGE/lib/$SO" "$STAGE/lib/libmoq_ffi.a"
mkdir -p "$STAGE/share/moq_ffi/examples" "$STAGE/share/doc/moq_ffi"
cp -r cmake/consumer "$STAGE/share/moq_ffi/examples/consumer"
[ -d docs/guide ] && cp -r docs/guide "$STAGE/share/doc/moq_ffi/guide"
[ -d docs/examples ] && cp -r docs/examples "$STAGE/share/doc/moq_ffi/examples"
license=$(grep -m1 -E '^license *= *"' Cargo.toml | sed -E 's/^license *= *"([^"]+)".*/\1/')
{
  echo "moq-ffi $VERSION is licensed under $license, at your option."
  echo "Both license texts follow."
  echo
  echo "==================================== MIT ===================================="
  cat cmake/LICENSE-MIT
  echo
  echo "================================= Apache-2.0 ================================"
  cat cmake/LICENSE-APACHE
} >"$STAGE/LICENSE"
cat >"$STAGE/README.txt" <<EOF
moq-ffi $VERSION ($OS-$ARCH): a C ABI for Media over QUIC (MoQ).

  include/moq_ffi.h     C API (C99 or later); include/moq_ffi.hpp: C++17 RAII wrapper
  lib/$SO     shared library;  lib/libmoq_ffi.a: static library (define MOQ_FFI_STATIC)
  bin/                  moq-pub, moq-sub, moq-relay-lite (run with --help)

CMake:       find_package(moq_ffi 0.2 REQUIRED) with CMAKE_PREFIX_PATH=<this directory>;
             link moq_ffi::moq_ffi (shared) or moq_ffi::moq_ffi_static (static)
pkg-config:  PKG_CONFIG_PATH=<this directory>/lib/pkgconfig
             pkg-config --cflags --libs moq_ffi          (shared)
             pkg-config --cflags --libs moq_ffi-static   (static)
Example:     share/moq_ffi/examples/consumer (builds with CMake as shown above)
Guide:       share/doc/moq_ffi/guide/index.md
Integrity:   sha256sum -c SHA256SUMS
EOF
(cd "$STAGE" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum >SHA256SUMS)
tar -C "$PKG/stage" -czf "$ARCHIVE" "$NAME"
echo "    SDK archive: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"

# --- 3. the Unreal layout
UE=$PKG/unreal/ThirdParty/moq_ffi
mkdir -p "$UE/include" "$UE/lib/$UE_PLATFORM" "$UE/bin/$UE_PLATFORM"
cp "$STAGE/include/moq_ffi.h" "$STAGE/include/moq_ffi.hpp" "$UE/include/"
cp "$STAGE/lib/$SO" "$STAGE/lib/libmoq_ffi.a" "$UE/lib/$UE_PLATFORM/"
cp "$STAGE/lib/$SO" "$UE/bin/$UE_PLATFORM/"
cp cmake/unreal/moq_ffi.Build.cs "$UE/moq_ffi.Build.cs"
cp "$STAGE/LICENSE" "$UE/LICENSE"
tar -C "$PKG/unreal" -czf "$UE_ARCHIVE" ThirdParty
echo "    Unreal layout: $UE_ARCHIVE ($(du -h "$UE_ARCHIVE" | cut -f1))"
ok "built $NAME.tar.gz and $UE_NAME.tar.gz"
fi
[ -f "$ARCHIVE" ] && [ -f "$UE_ARCHIVE" ] || fail "archives missing: run without --verify-only"

if [ "$VERIFY" = 0 ]; then
  echo "package: built in $((SECONDS - start_all)) s (not verified)"
  exit 0
fi

# --- 4. verify the SDK archive from a fresh directory
work=$(mktemp -d)
relay_pids=()
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$ARCHIVE"
U=$work/$NAME
(cd "$U" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the unpacked files"
ok "unpacked; SHA256SUMS matches $(wc -l <"$U/SHA256SUMS") files"
for f in include/moq_ffi.h include/moq_ffi.hpp lib/$SO lib/libmoq_ffi.a lib/cmake/moq_ffi/moq_ffiConfig.cmake \
  lib/cmake/moq_ffi/moq_ffiConfigVersion.cmake lib/pkgconfig/moq_ffi.pc lib/pkgconfig/moq_ffi-static.pc \
  bin/moq-pub bin/moq-sub bin/moq-relay-lite LICENSE README.txt SHA256SUMS share/moq_ffi/examples/consumer/CMakeLists.txt; do
  [ -e "$U/$f" ] || fail "archive lacks $f"
done
ok "archive holds include/, lib/ (shared + static), lib/cmake, lib/pkgconfig, bin/ tools, LICENSE, SHA256SUMS"
if [ "$UE_PLATFORM" = Linux ]; then
  others=$(nm -D --defined-only "$U/lib/$SO" | awk '{print $NF}' | grep -v '^moq_' || true)
  [ -z "$others" ] || fail "shipped $SO exports non-moq_ symbols: $others"
  ok "shipped $SO exports only moq_* ($(nm -D --defined-only "$U/lib/$SO" | wc -l) symbols)"
fi

# 4a. CMake find_package consumer (shared, static, C++ wrapper), sources from the archive itself
t=$SECONDS
src=$work/consumer-src
cp -r "$U/share/moq_ffi/examples/consumer" "$src"
env -u CARGO_TARGET_DIR cmake -S "$src" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$U" -DCMAKE_BUILD_TYPE=Release \
  >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; fail "consumer: cmake configure (find_package)"; }
has "$ROOT" "$work/consumer-build/CMakeCache.txt" && fail "consumer build refers to the source tree $ROOT"
cmake --build "$work/consumer-build" -j2 >>"$work/consumer.log" 2>&1 || { tail -40 "$work/consumer.log"; fail "consumer: build"; }
echo "    cmake consumer build: $((SECONDS - t)) s"
needed=$(readelf -d "$work/consumer-build/consumer_shared" | grep 'NEEDED.*moq_ffi' || true)
echo "$needed" | has "Shared library: \[$SO\]" || fail "consumer_shared records '$needed', want plain $SO (relocatable)"
ldd "$work/consumer-build/consumer_shared" | has "$U/lib/$SO" || fail "consumer_shared does not load the SDK's $SO: $(ldd "$work/consumer-build/consumer_shared" | grep moq)"
readelf -d "$work/consumer-build/consumer_static" | has 'NEEDED.*moq_ffi' && fail "consumer_static depends on a shared moq_ffi"
for exe in consumer_shared consumer_static consumer_cpp; do
  out=$(timeout 60 "$work/consumer-build/$exe") || fail "$exe: $out"
  echo "    $exe: $out"
  echo "$out" | has ': OK' || fail "$exe: $out"
done
ok "CMake find_package(moq_ffi): consumer_shared (loads the SDK's $SO), consumer_static (no shared dependency), consumer_cpp ran OK"

# 4b. pkg-config consumer (shared and static)
export PKG_CONFIG_PATH="$U/lib/pkgconfig" PKG_CONFIG_LIBDIR="$U/lib/pkgconfig"
[ "$(pkg-config --modversion moq_ffi)" = "$VERSION" ] || fail "pkg-config --modversion moq_ffi: $(pkg-config --modversion moq_ffi)"
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -Werror "$src/consumer.c" $(pkg-config --cflags --libs moq_ffi) \
  -Wl,-rpath,"$(pkg-config --variable=libdir moq_ffi)" -lpthread -o "$work/pc_shared" || fail "pkg-config shared build"
# shellcheck disable=SC2046
gcc -std=c99 -Wall -Wextra -Werror "$src/consumer.c" $(pkg-config --cflags --libs moq_ffi-static) -o "$work/pc_static" \
  || fail "pkg-config static build"
unset PKG_CONFIG_PATH PKG_CONFIG_LIBDIR
ldd "$work/pc_shared" | has "$U/lib/" || fail "pc_shared does not load the SDK's library"
readelf -d "$work/pc_static" | has 'NEEDED.*moq_ffi' && fail "pc_static depends on a shared moq_ffi"
for exe in pc_shared pc_static; do
  out=$(timeout 60 "$work/$exe") || fail "$exe: $out"
  echo "    $exe: $out"
  echo "$out" | has ': OK' || fail "$exe: $out"
done
ok "pkg-config --cflags --libs moq_ffi / moq_ffi-static: consumers built and ran OK (version $VERSION)"

# 4c. the shipped tools
for t in moq-pub moq-sub moq-relay-lite; do
  readelf -d "$U/bin/$t" | has "NEEDED.*Shared library: \[$SO\]" || fail "$t does not record plain $SO"
  ldd "$U/bin/$t" | has "$U/bin/../lib/$SO" || fail "$t does not find the SDK's library via RUNPATH: $(ldd "$U/bin/$t" | grep moq)"
done
bash scripts/tools-tests.sh "$U/bin" | sed 's/^/    /'
ok "bin/ tools from the archive pass scripts/tools-tests.sh"

# --- 5. verify the Unreal layout
mkdir -p "$work/ue"
tar -C "$work/ue" -xzf "$UE_ARCHIVE"
M=$work/ue/ThirdParty/moq_ffi
for f in include/moq_ffi.h include/moq_ffi.hpp lib/$UE_PLATFORM/$SO lib/$UE_PLATFORM/libmoq_ffi.a bin/$UE_PLATFORM/$SO moq_ffi.Build.cs LICENSE; do
  [ -e "$M/$f" ] || fail "Unreal layout lacks $f"
done
# Every path the Build.cs names for this platform exists in the layout.
block=$(awk "/UnrealTargetPlatform.$UE_PLATFORM\\)/{f=1} f&&/^\t\t}/{print; exit} f" "$M/moq_ffi.Build.cs")
paths=$(echo "$block" | grep -oE 'Path.Combine\((LibDir|BinDir), "[^"]+"\)' | sed -E "s/Path.Combine\(LibDir, \"([^\"]+)\"\)/lib\/$UE_PLATFORM\/\1/; s/Path.Combine\(BinDir, \"([^\"]+)\"\)/bin\/$UE_PLATFORM\/\1/")
[ -n "$paths" ] || fail "no $UE_PLATFORM paths found in moq_ffi.Build.cs"
for p in $paths; do [ -e "$M/$p" ] || fail "moq_ffi.Build.cs names $p, missing from the layout"; done
ok "Unreal layout: include/, lib/$UE_PLATFORM, bin/$UE_PLATFORM, Build.cs; its $UE_PLATFORM paths exist ($(echo $paths | tr '\n' ' '))"
# Link the way the Build.cs tells UnrealBuildTool to: include/, the library in lib/<Platform>,
# the staged copy from bin/<Platform> at run time (shared); and the static variant.
# (UnrealBuildTool links a .so from PublicAdditionalLibraries as -L<dir> -l<name>.)
g++ -std=c++17 -Wall -Wextra -Werror -I"$M/include" "$src/consumer.cpp" -L"$M/lib/$UE_PLATFORM" -lmoq_ffi \
  -Wl,-rpath,"$M/bin/$UE_PLATFORM" -lpthread -o "$work/ue_shared" || fail "Unreal-style shared link"
gcc -std=c99 -Wall -Wextra -Werror -DMOQ_FFI_STATIC -I"$M/include" "$src/consumer.c" "$M/lib/$UE_PLATFORM/libmoq_ffi.a" \
  -lgcc_s -lutil -lrt -lpthread -lm -ldl -o "$work/ue_static" || fail "Unreal-style static link"
for exe in ue_shared ue_static; do
  out=$(timeout 60 "$work/$exe") || fail "$exe: $out"
  echo "$out" | has ': OK' || fail "$exe: $out"
done
ldd "$work/ue_shared" | has "$M/bin/$UE_PLATFORM/$SO" || fail "ue_shared did not load bin/$UE_PLATFORM/$SO"
ok "Unreal layout: a C++ wrapper program linked from include/ + lib/$UE_PLATFORM (run with the staged bin/$UE_PLATFORM copy) and a static C program ran OK"
# The Build.cs compiles as C# against minimal stand-ins of the UnrealBuildTool API it uses.
cat >"$work/ubt_stubs.cs" <<'EOF'
// Stand-ins for the UnrealBuildTool types moq_ffi.Build.cs uses (signatures as in UE 5).
using System.Collections.Generic;
namespace UnrealBuildTool {
  public enum ModuleType { CPlusPlus, External }
  public struct UnrealTargetPlatform {
    string Name; UnrealTargetPlatform(string n) { Name = n; }
    public static readonly UnrealTargetPlatform Win64 = new UnrealTargetPlatform("Win64");
    public static readonly UnrealTargetPlatform Mac = new UnrealTargetPlatform("Mac");
    public static readonly UnrealTargetPlatform Linux = new UnrealTargetPlatform("Linux");
    public static bool operator ==(UnrealTargetPlatform a, UnrealTargetPlatform b) { return a.Name == b.Name; }
    public static bool operator !=(UnrealTargetPlatform a, UnrealTargetPlatform b) { return a.Name != b.Name; }
    public override bool Equals(object o) { return o is UnrealTargetPlatform && ((UnrealTargetPlatform)o).Name == Name; }
    public override int GetHashCode() { return Name.GetHashCode(); }
  }
  public class ReadOnlyTargetRules { public UnrealTargetPlatform Platform; }
  public class RuntimeDependencyList { public void Add(string InPath, string InSourcePath) {} public void Add(string InPath) {} }
  public class ModuleRules {
    public ModuleRules(ReadOnlyTargetRules Target) {}
    public ModuleType Type;
    public string ModuleDirectory = "";
    public List<string> PublicIncludePaths = new List<string>();
    public List<string> PublicAdditionalLibraries = new List<string>();
    public List<string> PublicSystemLibraries = new List<string>();
    public List<string> PublicDelayLoadDLLs = new List<string>();
    public List<string> PublicDefinitions = new List<string>();
    public List<string> PublicFrameworks = new List<string>();
    public RuntimeDependencyList RuntimeDependencies = new RuntimeDependencyList();
  }
}
EOF
mcs -target:library -warnaserror+ -out:"$work/moq_ffi_build.dll" "$work/ubt_stubs.cs" "$M/moq_ffi.Build.cs" >"$work/mcs.log" 2>&1 \
  || { cat "$work/mcs.log"; fail "moq_ffi.Build.cs does not compile"; }
ok "moq_ffi.Build.cs compiles (mcs, warnings as errors) against UnrealBuildTool stand-ins"

echo "SDK archive contents:"
tar -tzf "$ARCHIVE" | grep -v '/$' | sed 's/^/    /'
echo "package: $checks checks passed in $((SECONDS - start_all)) s"
