#!/usr/bin/env bash
# Chaos, the long run: `weir run` killed with kill -9 many times while boto3 uploads thousands of
# files of every kind through the S3 endpoint (crates/weir/tests/chaos.rs, which CI runs short).
# Prints the cycles, the uploads and the violations found (the test fails on any).
# Usage: bench/chaos.sh [CYCLES] [UPLOADS] [BIG_MB]     (defaults: 200 kills, 2500 uploads, 12 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import boto3' 2>/dev/null; then
  python3 -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check boto3==1.44.3
fi
export WEIR_TEST_PYTHON="$PWD/.venv/bin/python"
export WEIR_CHAOS_CYCLES="${1:-200}" WEIR_CHAOS_UPLOADS="${2:-2500}" WEIR_CHAOS_BIG_MB="${3:-12}"
export WEIR_CHAOS_SEED="${WEIR_CHAOS_SEED:-$(date +%s)}"
echo "chaos: $WEIR_CHAOS_CYCLES kills, $WEIR_CHAOS_UPLOADS uploads, seed $WEIR_CHAOS_SEED (release build)"
cargo test --release -p weir --test chaos -- --nocapture 2>&1 | grep -E '^chaos|violations|panicked|test result'
