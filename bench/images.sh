#!/usr/bin/env bash
# weir's thumbnails against the seed's Pillow code, on one core, in one run.
#
#   bench/images.sh                  10 generated 12 MP JPEGs, best of 3 rounds
#   options (passed to bench/images.py): --images N  --repeat K
#
# Pillow (PyPI, pinned, with its bundled libjpeg-turbo) goes into bench/out/venv-pillow; the
# photos are made once into bench/out/photos/. See bench/images.py for what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed to pin each run to one CPU" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed for the Pillow comparison" >&2; exit 1; }

OUT=bench/out
PILLOW_VERSION=12.3.0
if [ "$(cat $OUT/venv-pillow/.weir-pillow 2>/dev/null)" != "$PILLOW_VERSION" ]; then
  echo "== installing pillow==$PILLOW_VERSION into $OUT/venv-pillow" >&2
  python3 -m venv "$OUT/venv-pillow"
  "$OUT/venv-pillow/bin/pip" install --quiet --disable-pip-version-check "pillow==$PILLOW_VERSION"
  echo "$PILLOW_VERSION" > "$OUT/venv-pillow/.weir-pillow"
fi

echo "== building (release)" >&2
cargo build --release --quiet -p weir
cargo build --release --quiet -p weir-image --example thumbnails
TARGET=${CARGO_TARGET_DIR:-target}
exec "$OUT/venv-pillow/bin/python" bench/images.py \
  --weir "$TARGET/release/weir" --thumbnails "$TARGET/release/examples/thumbnails" --out "$OUT" "$@"
