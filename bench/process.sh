#!/usr/bin/env bash
# weir process against DuckDB on the sales CSV, in one invocation.
#
#   bench/process.sh                 2,000,000 rows: weir on 1 thread and on N threads, DuckDB
#                                    (threads=1) doing the same job, the ratio, peak RSS
#   bench/process.sh --big           also 20,000,000 rows (about 1.1 GB) for the flat-RSS check
#   options: --rows N  --bad PERCENT (default 3)  --repeat K (best of K, default 3)  --threads N
#
# The file comes from the deterministic generator (crates/weir-process/examples/gen_sales.rs,
# also runnable alone: bench/gen_sales.sh ROWS FILE [BAD_PERCENT]). weir runs as the release
# binary with the bundled sales pipeline (schema check, typed validation, revenue derived, NDJSON
# out, summary with revenue per product, error report). DuckDB (PyPI, pinned, in bench/out/venv)
# reads the same CSV with typed columns, writes NDJSON with revenue and groups by product with
# SET threads=1. Times are wall clock, best of --repeat runs, with that run's CPU time (user +
# system; on a shared machine the steadier figure); RSS is /usr/bin/time's maximum.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=2000000 BIG=0 BAD=3 REPEAT=3 THREADS=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --big) BIG=1; shift ;;
    --bad) BAD=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { echo "/usr/bin/time (GNU time) is needed for peak RSS: apt-get install time" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed for the DuckDB comparison" >&2; exit 1; }

OUT=bench/out
mkdir -p "$OUT"
DUCKDB_VERSION=2.0.0
if [ "$(cat $OUT/venv/.weir-duckdb 2>/dev/null)" != "$DUCKDB_VERSION" ]; then
  echo "== installing duckdb==$DUCKDB_VERSION into $OUT/venv" >&2
  python3 -m venv "$OUT/venv"
  "$OUT/venv/bin/pip" install --quiet --disable-pip-version-check "duckdb==$DUCKDB_VERSION"
  echo "$DUCKDB_VERSION" > "$OUT/venv/.weir-duckdb"
fi

echo "== building (release)" >&2
cargo build --release --quiet -p weir
cargo build --release --quiet -p weir-process --example gen_sales
WEIR=target/release/weir
GEN=target/release/examples/gen_sales

generate() { # rows file
  if [ ! -s "$2" ] || [ "$(cat "$2.rows" 2>/dev/null)" != "$1 $BAD" ]; then
    echo "== generating $1 rows ($BAD % bad) into $2" >&2
    "$GEN" "$1" "$2" "$BAD"
    echo "$1 $BAD" > "$2.rows"
  fi
}

# best-of-K run of a command; prints "seconds max_rss_kib cpu_seconds" (the fastest run's wall
# and CPU time, the largest RSS of all runs).
measure() {
  local best="" rss="" cpu="" i t r u s
  for i in $(seq "$REPEAT"); do
    # Every run starts with no old outputs (truncating a large file costs a writer time) and
    # with the previous run's writes on disk (so they do not throttle this one).
    rm -rf "$OUT/weir" "$OUT/duckdb.ndjson"
    sync
    /usr/bin/time -f "%e %M %U %S" -o "$OUT/time.txt" "$@" > "$OUT/stdout.txt" 2> "$OUT/stderr.txt" || {
      cat "$OUT/stderr.txt" >&2; echo "failed: $*" >&2; exit 1; }
    read -r t r u s < <(tail -n 1 "$OUT/time.txt")
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; cpu=$(awk "BEGIN{print $u + $s}"); fi
    if [ -z "$rss" ] || [ "$r" -gt "$rss" ]; then rss=$r; fi
  done
  echo "$best $rss $cpu"
}

threads_config() { # n -> path of the bundled config with output.threads = n
  sed "s/^# threads = 1 .*/threads = $1/" crates/weir-core/src/default_weir.toml > "$OUT/threads$1.toml"
  echo "$OUT/threads$1.toml"
}

report() { # label rows bytes seconds rss_kib cpu_seconds
  awk -v l="$1" -v n="$2" -v b="$3" -v s="$4" -v r="$5" -v c="$6" 'BEGIN {
    printf "%-36s %7.3f s  %6.2f M rows/s  %6.1f MB/s  peak RSS %6.1f MiB  (CPU %.2f s)\n", l, s, n / s / 1e6, b / s / 1e6, r / 1024, c }'
}

CSV=$OUT/sales_$ROWS.csv
generate "$ROWS" "$CSV"
BYTES=$(stat -c %s "$CSV")
rm -rf "$OUT/weir"

read -r W1 R1 C1 < <(measure "$WEIR" process "$CSV" --out "$OUT/weir")
VALID=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s['valid_rows'], s['invalid_rows'])" "$OUT/weir/$(basename "$CSV").summary.json")
CFG=$(threads_config "$THREADS")
read -r WN RN CN < <(measure "$WEIR" --config "$CFG" process "$CSV" --out "$OUT/weir")
read -r D1 DR DC < <(measure "$OUT/venv/bin/python" bench/duckdb_sales.py "$CSV" "$OUT/duckdb.ndjson" 1)
DVALID=$(cat "$OUT/stdout.txt")

echo
echo "sales CSV: $ROWS rows, $BYTES bytes, $BAD % bad rows (weir: valid/invalid $VALID; duckdb kept $DVALID)"
report "weir process, 1 thread" "$ROWS" "$BYTES" "$W1" "$R1" "$C1"
report "weir process, $THREADS threads" "$ROWS" "$BYTES" "$WN" "$RN" "$CN"
report "duckdb $DUCKDB_VERSION, threads=1" "$ROWS" "$BYTES" "$D1" "$DR" "$DC"
awk -v w="$W1" -v d="$D1" -v wc="$C1" -v dc="$DC" -v n="$WN" -v t="$THREADS" 'BEGIN {
  printf "weir vs DuckDB (1 thread each):    %.2fx faster (wall), %.2fx less CPU\n", d / w, dc / wc
  printf "weir scaling, 1 -> %d threads:      %.2fx (wall)\n", t, w / n }'

if [ "$BIG" = 1 ]; then
  BIGCSV=$OUT/sales_20000000.csv
  generate 20000000 "$BIGCSV"
  BIGBYTES=$(stat -c %s "$BIGCSV")
  SAVED=$REPEAT; REPEAT=1
  read -r B1 BR BC < <(measure "$WEIR" process "$BIGCSV" --out "$OUT/weir")
  read -r BN BRN BNC < <(measure "$WEIR" --config "$CFG" process "$BIGCSV" --out "$OUT/weir")
  REPEAT=$SAVED
  report "weir process 20M rows, 1 thread" 20000000 "$BIGBYTES" "$B1" "$BR" "$BC"
  report "weir process 20M rows, $THREADS threads" 20000000 "$BIGBYTES" "$BN" "$BRN" "$BNC"
  rm -rf "$OUT/weir"
fi
