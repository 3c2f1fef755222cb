#!/usr/bin/env bash
# One pass writing NDJSON and Parquet against two passes writing one format each (#20 part 5).
#
#   bench/formats.sh [ROWS] [REPEAT]     default 2,000,000 rows, best of 3
#
# The sales file comes from the deterministic generator (bench/gen_sales.sh); the pass is the
# bundled sales pipeline (schema check, typed validation, revenue derived, summary) run by
# crates/weir-process/examples/formats_pass.rs in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-2000000} REPEAT=${2:-3}
OUT=bench/out
mkdir -p "$OUT"
FILE="$OUT/sales_${ROWS}.csv"
[ -s "$FILE" ] || bench/gen_sales.sh "$ROWS" "$FILE" 3
cargo run --quiet --release -p weir-process --example formats_pass -- "$FILE" "$OUT" "$REPEAT"
