#!/usr/bin/env bash
# Dependency audit against the offline RustSec snapshot (no network): ../shared/advisory-db beside
# the checkout, or MOQ_ADVISORY_DB. Ignored advisories and why: .cargo/audit.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
db=${MOQ_ADVISORY_DB:-../shared/advisory-db}
if [ ! -d "$db/crates" ]; then
  echo "FAILED: no advisory database at $db (set MOQ_ADVISORY_DB)" >&2
  exit 1
fi
cargo audit --db "$db" --no-fetch --stale --deny warnings
