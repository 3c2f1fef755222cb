#!/usr/bin/env bash
# The sales CSV into PostgreSQL through weir, against psql's \copy as the anchor, in one run.
#
#   bench/postgres.sh            2,000,000 rows (all valid): weir run with the bundled sales
#                                pipeline and [pipeline.sinks.postgres] (schema check, typed
#                                validation, revenue derived, NDJSON out, summary, binary COPY
#                                into the table in one transaction), then psql
#                                `\copy ... (FORMAT csv)` of the same file into an equivalent
#                                typed table, and into a copy of weir's own table (from a CSV
#                                and from COPY's binary form of the rows weir loaded)
#   bench/postgres.sh --big      also 20,000,000 rows through weir: its peak RSS from 2M to 20M
#   options: --rows N  --repeat K (best of K, default 3)  --keep (leave bench/out/pg)
#
# weir's time is the job's own (started → finished in the job record: every workflow state,
# the load and its commit included; the upload before it is not). Its peak RSS is the weir run
# process's VmHWM (peak resident set): after the first load of a fresh process, after all
# REPEAT loads in that process, and for --big after one 20M-row load in a fresh process. The
# anchors are timed around psql. The tables are emptied before each run. The server is a
# PostgreSQL of its own: initdb in a temp dir, default settings, a free loopback port (as the
# `postgres` user when run as root), stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=2000000 BIG=0 REPEAT=3 KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) ROWS=$2; shift 2 ;;
    --big) BIG=1; shift ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PGBIN" ] || PGBIN=$(dirname "$(command -v initdb)")
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
echo "== building (release)" >&2
cargo build --release --quiet -p weir
cargo build --release --quiet -p weir-process --example gen_sales
WEIR=$target/release/weir
GEN=$target/release/examples/gen_sales

OUT=bench/out/pg
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi }
PGDIR=$(mktemp -d /tmp/weir-bench-pg.XXXXXX)
echo bench > "$PGDIR/pwfile"
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$PGDIR"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WEIRPID=""
cleanup() {
  [ -z "$WEIRPID" ] || kill "$WEIRPID" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
  [ "$KEEP" = 1 ] || rm -rf "$OUT"
}
trap cleanup EXIT
echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2
as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U weir -A scram-sha-256 --pwfile="$PGDIR/pwfile" -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null
export WEIR_POSTGRES_URL="postgres://weir:bench@127.0.0.1:$PORT/postgres?sslmode=disable"
export PGPASSWORD=bench
psql_() { "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U weir -d postgres "$@"; }

CONFIG=$OUT/weir.toml
# No reconcile at start: it would race the first upload (listed before its event is sent).
# The sales pipeline's commented sink, switched on (the section belongs to that pipeline, not
# to the image pipeline after it).
sed -e 's/^reconcile_on_start = true/reconcile_on_start = false/' \
  -e 's/^# \[pipeline.sinks.postgres\]/[pipeline.sinks.postgres]/' \
  -e 's/^# table = "sales"/table = "sales"/' crates/weir-core/src/default_weir.toml > "$CONFIG"
grep -q '^\[pipeline.sinks.postgres\]' "$CONFIG" || { echo "default_weir.toml's commented sink changed; update $0" >&2; exit 1; }
weir() { "$WEIR" --config "$CONFIG" --data-dir "$OUT/data" "$@"; }
weir setup postgres >&2

start_weir() {
  rm -f "$OUT/data/endpoints.json"
  WEIR_LOG=warn "$WEIR" --config "$CONFIG" --data-dir "$OUT/data" run \
    --s3-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 >/dev/null 2>"$OUT/run.log" &
  WEIRPID=$!
  for _ in $(seq 600); do [ -s "$OUT/data/endpoints.json" ] && return; sleep 0.1; done
  echo "weir run did not start: $(cat "$OUT/run.log")" >&2; exit 1
}
stop_weir() { kill "$WEIRPID"; wait "$WEIRPID" 2>/dev/null || true; WEIRPID=""; }
peak_rss_kib() { awk '/^VmHWM/ {print $2}' "/proc/$WEIRPID/status"; }

# One file through weir under a new key: prints "seconds loaded valid" (the job's duration, the
# rows the table took, the valid rows sent).
weir_load() { # file key
  local key=$2
  psql_ -c "TRUNCATE sales"
  sync
  weir put "$1" --key "$key" --wait --timeout 7200 >/dev/null
  weir jobs --json --limit 100 | python3 -c '
import json, sys
jobs = [json.loads(line) for line in sys.stdin if line.strip()]  # one job a line
job = next(j for j in jobs if j["source_key"] == sys.argv[1] and j["status"] != "skipped")
assert job["status"] == "succeeded", job
print(job["duration_ms"] / 1000, job["warehouse"]["rows"], job["valid_rows"])' "$key"
  # Nothing of the run stays on disk but the table: the archived source and the outputs go.
  rm -rf "$OUT/data/weir-archive/raw" "$OUT/data/weir-output/processed" "$OUT/data/weir-output/reports"
}

# The anchor: psql's \copy of a CSV into TABLE, best of REPEAT; prints seconds.
copy_best() { # table file options
  local best="" t0 t1 t
  for _ in $(seq "$REPEAT"); do
    psql_ -c "TRUNCATE $1"
    sync
    t0=$(date +%s.%N)
    psql_ -c "\\copy $1 FROM '$2' ($3)"
    t1=$(date +%s.%N)
    t=$(awk "BEGIN {print $t1 - $t0}")
    if [ -z "$best" ] || awk "BEGIN {exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best"
}

report() { # label rows seconds [rss_kib]
  awk -v l="$1" -v n="$2" -v s="$3" -v r="${4:-}" 'BEGIN {
    printf "%-58s %8.3f s  %6.3f M rows/s", l, s, n / s / 1e6
    if (r != "") printf "  peak RSS %6.1f MiB", r / 1024
    printf "\n" }'
}

CSV=$OUT/sales_$ROWS.csv
echo "== generating $ROWS rows (all valid) into $CSV" >&2
"$GEN" "$ROWS" "$CSV" 0 >/dev/null

start_weir
best="" rows="" RSS1=""
for i in $(seq "$REPEAT"); do
  read -r t rows _ < <(weir_load "$CSV" "raw/bench-$i.csv")
  if [ -z "$best" ] || awk "BEGIN {exit !($t < $best)}"; then best=$t; fi
  [ -n "$RSS1" ] || RSS1=$(peak_rss_kib)
done
RSS=$(peak_rss_kib)
stop_weir
TABLE_MB=$(psql_ -c "SELECT pg_total_relation_size('sales') / 1048576")

# Anchor 1: the columns of the file, typed, nothing else (the issue's "equivalent typed table").
psql_ -c "CREATE TABLE anchor_typed (order_id text, customer_name text, product text, quantity bigint, price double precision, date date)"
A1=$(copy_best anchor_typed "$CSV" "FORMAT csv, HEADER true")
# Anchor 2: the table weir loads (typed columns, data jsonb, lineage, primary key, source index),
# from a CSV of exactly the rows weir put in it.
psql_ -c "\\copy (SELECT * FROM sales) TO '$OUT/sales_table.csv' (FORMAT csv)"
psql_ -c "CREATE TABLE anchor_same (LIKE sales INCLUDING ALL)"
A2=$(copy_best anchor_same "$OUT/sales_table.csv" "FORMAT csv")
# Anchor 3: the same rows into the same table in COPY's binary format, as weir sends them: the
# server's own time for this table, with no client work at all (the file is already encoded).
psql_ -c "\\copy (SELECT * FROM sales) TO '$OUT/sales_table.bin' (FORMAT binary)"
A3=$(copy_best anchor_same "$OUT/sales_table.bin" "FORMAT binary")
rm -f "$OUT/sales_table.csv" "$OUT/sales_table.bin"

echo
echo "sales CSV: $ROWS rows, $(stat -c %s "$CSV") bytes; weir's table: $TABLE_MB MiB; best of $REPEAT; $(nproc) cores"
report "weir run: upload -> job succeeded, $rows rows loaded" "$ROWS" "$best" "$RSS1"
awk -v k="$REPEAT" -v a="$RSS1" -v b="$RSS" 'BEGIN {
  printf "weir run peak RSS: %.1f MiB after its first load, %.1f MiB after %d loads in the same process\n", a / 1024, b / 1024, k }'
report "psql \\copy (FORMAT csv) into a typed table of the file's columns" "$ROWS" "$A1"
report "psql \\copy (FORMAT csv) into weir's table shape (jsonb, lineage, PK)" "$ROWS" "$A2"
report "psql \\copy (FORMAT binary) of weir's rows into its table shape" "$ROWS" "$A3"
awk -v w="$best" -v a="$A1" -v b="$A2" -v c="$A3" 'BEGIN {
  printf "weir vs psql \\copy, typed table of the CSV columns:   %.2fx the rows/s\n", a / w
  printf "weir vs psql \\copy, same table shape (csv):            %.2fx the rows/s\n", b / w
  printf "weir vs psql \\copy, same table shape (binary):         %.2fx the rows/s\n", c / w }'

if [ "$BIG" = 1 ]; then
  # 20M rows would make a table of about 8 GB: the server discards them instead (a BEFORE
  # INSERT trigger that returns NULL, which COPY fires for every row). weir streams every row
  # the same way, so its memory is what it would be; its time is not a load's.
  psql_ -c "CREATE FUNCTION discard() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'"
  psql_ -c "CREATE TRIGGER discard BEFORE INSERT ON sales FOR EACH ROW EXECUTE FUNCTION discard()"
  rm -f "$CSV" "$OUT/sales_table.csv"
  BIGCSV=$OUT/sales_20000000.csv
  echo "== generating 20,000,000 rows into $BIGCSV" >&2
  "$GEN" 20000000 "$BIGCSV" 0 >/dev/null
  start_weir
  read -r BT _ BROWS < <(weir_load "$BIGCSV" raw/big.csv)
  BRSS=$(peak_rss_kib)
  stop_weir
  report "weir run, 20M rows (server discarding): $BROWS rows sent" 20000000 "$BT" "$BRSS"
fi
