#!/usr/bin/env bash
# What watching weir costs as its history grows: with N finished jobs in the store, the time
# GET /metrics, GET /v1/overview (an hour, a day) and `weir jobs --limit 50` take (median of 7),
# and `weir run`'s CPU while idle (over 30 s). Target (issue #15): each <= 50 ms and idle CPU under
# 1 % of a core at 1,000,000 jobs.
# Usage: bench/observe.sh [N ...]     (default: 10000 100000 1000000; the store grows to each N)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p weir --bin weir
cargo build --release --quiet -p weir-backends --example seed_jobs
target="${CARGO_TARGET_DIR:-target}"
weir="$target/release/weir"
data="$target/bench-data/observe"
mkdir -p "$data" && chmod 700 "$data"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
hz=$(getconf CLK_TCK)

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '%-9s  %-10s  %-13s  %-13s  %-10s  %-9s\n' jobs metrics overview-1h overview-24h "jobs cmd" "idle CPU"
for n in "${sizes[@]}"; do
  "$target/release/examples/seed_jobs" "$data" "$n" 2>/dev/null
  rm -f "$data/endpoints.json"
  "$weir" --data-dir "$data" run --s3-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 >/dev/null 2>"$data/run.log" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 600); do [ -s "$data/endpoints.json" ] && break; sleep 0.1; done
  api=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' "$data/endpoints.json")
  token=$(sed -n 's/^api_token = "\(.*\)"/\1/p' "$data/credentials.toml")
  sleep 3   # the start's own work (reconcile, the first alarm tick)
  get() { curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$api$1"; }
  metrics=$(for _ in $(seq 7); do get /metrics; done | median)
  hour=$(for _ in $(seq 7); do get '/v1/overview?minutes=60'; sleep 1.1; done | median)
  day=$(for _ in $(seq 7); do get '/v1/overview?minutes=1440'; sleep 1.1; done | median)
  jobs=$(for _ in $(seq 7); do
    s=$(date +%s%N); "$weir" --data-dir "$data" jobs --limit 50 >/dev/null; e=$(date +%s%N)
    awk -v d=$((e - s)) 'BEGIN {print d / 1e9}'
  done | median)
  t0=$(cpu_ticks $pid); sleep 30; t1=$(cpu_ticks $pid)
  idle=$(awk -v d=$((t1 - t0)) -v hz="$hz" 'BEGIN {printf "%.2f %%", 100 * d / hz / 30}')
  ms() { awk -v s="$1" 'BEGIN {printf "%.1f ms", s * 1000}'; }
  printf '%-9s  %-10s  %-13s  %-13s  %-10s  %-9s\n' "$n" "$(ms "$metrics")" "$(ms "$hour")" "$(ms "$day")" "$(ms "$jobs")" "$idle"
  kill $pid; wait $pid 2>/dev/null || true
  trap - EXIT
done
echo "data kept in $data (delete it to start from nothing)"
