#!/usr/bin/env bash
# Soak: thousands of small files through the embedded pipeline with a random share of every
# port call failing (before or after its work); reports files/s and whether the invariants held.
# Usage: bench/soak.sh [FILES] [FAILURE_RATE]     (defaults: 5000 files, 0.02)
set -euo pipefail
exec "$(dirname "$0")/event_path_embedded.sh" --steady-files 0 --burst-files 0 \
  --soak-files "${1:-5000}" --failure-rate "${2:-0.02}" --concurrency 16
