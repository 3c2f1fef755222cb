#!/usr/bin/env bash
# The deterministic sales CSV generator: bench/gen_sales.sh ROWS FILE [BAD_PERCENT]
# Same seed, same bytes; BAD_PERCENT (default 3) of the rows are invalid in one of four ways
# (non-numeric or fractional quantity, empty customer name, 2024-02-30).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet -p weir-process --example gen_sales -- "$@"
