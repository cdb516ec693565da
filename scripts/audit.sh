#!/usr/bin/env bash
# Dependency audit against the offline RustSec snapshot (no network): ../shared/advisory-db beside
# the checkout, or MOQ_ADVISORY_DB. Ignored advisories and why: .cargo/audit.toml.
# Installs cargo-audit 0.22.2 (cargo install --locked, once per machine) if it is missing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
db=${MOQ_ADVISORY_DB:-../shared/advisory-db}
if [ ! -d "$db/crates" ]; then
  echo "FAILED: no advisory database at $db (set MOQ_ADVISORY_DB)" >&2
  exit 1
fi
need_cargo_tool cargo-audit cargo-audit 0.22.2
cargo audit --db "$db" --no-fetch --stale --deny warnings
