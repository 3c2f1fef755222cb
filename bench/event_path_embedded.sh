#!/usr/bin/env bash
# The embedded event path without HTTP in the way: upload (the path the S3 endpoint and
# `weir put` take) → job succeeded, with the durable SQLite queue, on this machine's disk.
#   steady: 1 KB CSVs at 50 files/s → latency p50/p90/p99
#   burst:  as many as 32 uploaders can send → sustained files/s, CPU per file (this process and
#           the whole machine, the kernel's writeback included), peak RSS
#   soak (with --soak-files N): the burst with random transient failures in every port, then a
#         check of the invariants (one terminal state each, all succeeded, queue and DLQ empty)
# Usage: bench/event_path_embedded.sh [--concurrency C] [--steady-files N] [--rate R]
#                                     [--burst-files N] [--soak-files N --failure-rate P]
#                                     [--data-dir DIR] [--clean]
#
# Each run's data stays in target/bench-data/run-* (or under --data-dir) until --clean or by
# hand: on ext4 without a journal (this machine's root), the kernel steps over every inode
# freed in the last minutes when it makes a new file, so a run that starts right after a big
# delete measures that delete, not weir. Leave a few minutes between deleting and measuring.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p weir-pipeline --example event_path
target="${CARGO_TARGET_DIR:-target}"
args=() clean=0 data=""
while [ $# -gt 0 ]; do
  case "$1" in
    --clean) clean=1 ;;
    --data-dir) data="$2"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
data="${data:-$target/bench-data}"
mkdir -p "$data"
# Write back what other programs left dirty (the build just done, for one): weir's group commit
# calls syncfs, which would otherwise flush it inside the measurement.
sync -f "$data"
"$target/release/examples/event_path" --data-dir "$data" "${args[@]}"
if [ "$clean" -eq 1 ]; then
  rm -rf "$data"/run-*
else
  echo "data kept in $data (bench/event_path_embedded.sh --clean removes it after a run)"
fi
