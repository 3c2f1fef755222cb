#!/usr/bin/env bash
# The embedded event path without HTTP in the way: upload (the path the S3 endpoint and
# `weir put` take) → job succeeded, with the durable SQLite queue.
#   steady: 1 KB CSVs at 50 files/s → latency p50/p90/p99
#   burst:  as many as four uploaders can send → sustained files/s
#   soak (with --soak-files N): the burst with random transient failures in every port, then a
#         check of the invariants (one terminal state each, all succeeded, queue and DLQ empty)
# Usage: bench/event_path_embedded.sh [--concurrency C] [--steady-files N] [--rate R]
#                                     [--burst-files N] [--soak-files N --failure-rate P]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p weir-pipeline --example event_path
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/examples/event_path" "$@"
