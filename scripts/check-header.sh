#!/usr/bin/env bash
# The header compiles warning-free as C99, C11, C++17 and C++20, and is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/gen-header.sh --check
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "moq_ffi.h"\nint main(void) { return moq_version() == 0; }\n' > "$tmp/use.c"
for std in c99 c11; do
  gcc -std=$std -Wall -Wextra -Wpedantic -Werror -Iinclude -c "$tmp/use.c" -o "$tmp/use.o"
  echo "header compiles as $std"
done
for std in c++17 c++20; do
  g++ -std=$std -Wall -Wextra -Wpedantic -Werror -Iinclude -x c++ -c "$tmp/use.c" -o "$tmp/use.o"
  echo "header compiles as $std"
done
