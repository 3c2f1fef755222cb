#!/usr/bin/env bash
# Throughput of `weir worker` against a local moto server (S3 → SQS → workers → S3/DynamoDB/SNS).
#
#   bench/aws_moto.sh                 200 small sales files, 2 workers × concurrency 4
#   options: --files N  --workers N  --concurrency N
#
# It starts moto on a free loopback port, runs `weir setup aws` with deploy/aws/weir.toml, starts
# the workers, uploads the files with one `aws s3 sync` (S3 notifications put one event per file on
# the queue) and counts finished jobs in DynamoDB until all are done. The figure is moto's, a
# single Python process answering every S3, SQS and DynamoDB call: it says how much work the
# workers hand to the services per file, not what AWS would sustain. Needs the .venv that
# scripts/test creates (AWS CLI, moto) and builds weir in debug unless WEIR_BIN is set.
set -euo pipefail
cd "$(dirname "$0")/.."

FILES=200 WORKERS=2 CONCURRENCY=4
while [ $# -gt 0 ]; do
  case "$1" in
    --files) FILES=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --concurrency) CONCURRENCY=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x .venv/bin/aws ] && .venv/bin/python -c 'import moto' 2>/dev/null \
  || { echo "run scripts/test once first: it installs the AWS CLI and moto into .venv" >&2; exit 1; }
WEIR=${WEIR_BIN:-}
if [ -z "$WEIR" ]; then cargo build -q -p weir && WEIR=target/debug/weir; fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
.venv/bin/python -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "$endpoint" && break; sleep 0.1; done

export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
aws() { .venv/bin/aws --endpoint-url "$endpoint" "$@"; }
"$WEIR" --config deploy/aws/weir.toml setup aws --endpoint-url "$endpoint" | tail -1

for i in $(seq "$WORKERS"); do
  "$WEIR" --config deploy/aws/weir.toml --data-dir "$work/w$i" worker --endpoint-url "$endpoint" \
    --concurrency "$CONCURRENCY" >"$work/w$i.log" 2>&1 &
  pids+=($!)
done

mkdir -p "$work/files"
# Distinct content per file (trailing blank lines), so each is its own job.
for i in $(seq "$FILES"); do
  { cat samples/sales.csv; head -c "$i" /dev/zero | tr '\0' '\n'; } > "$work/files/sales-$i.csv"
done

start=$(date +%s.%N)
aws s3 sync --quiet "$work/files" s3://example-weir-input/raw/
uploaded=$(date +%s.%N)
while :; do
  done_jobs=$(aws dynamodb scan --table-name weir-jobs --select COUNT \
    --filter-expression 'begins_with(pk, :p) AND (#s = :ok OR #s = :rej OR #s = :f)' \
    --expression-attribute-names '{"#s": "status"}' \
    --expression-attribute-values '{":p": {"S": "JOB#"}, ":ok": {"S": "succeeded"}, ":rej": {"S": "rejected"}, ":f": {"S": "failed"}}' \
    --query Count --output text | awk '{s+=$1} END {print s+0}')
  [ "$done_jobs" -ge "$FILES" ] && break
  sleep 0.5
done
end=$(date +%s.%N)
python3 - "$FILES" "$start" "$uploaded" "$end" "$WORKERS" "$CONCURRENCY" <<'PY'
import sys
n, start, up, end, w, c = int(sys.argv[1]), *map(float, sys.argv[2:5]), sys.argv[5], sys.argv[6]
print(f"{n} files, {w} workers x concurrency {c}: upload {up-start:.1f} s, all jobs finished {end-start:.1f} s "
      f"after the upload began -> {n/(end-start):.1f} files/s end to end against moto")
PY
