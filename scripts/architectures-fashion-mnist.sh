#!/usr/bin/env bash
# reports/architectures-fashion-mnist/: MobileNetV3-Small/Large, EfficientNet-B0, RegNetY-400MF, ConvNeXt-Atto and
# ViT-Tiny (built for 32 px) on Fashion-MNIST: dense, int8 alone and structured pruning + int8 with one epoch of
# recovery, two seeds (scripts/grids/architectures-fashion-mnist.toml). One `compressor report --reference int8` per
# architecture (ARCH/), then the overview (scripts/architectures_summary.py). A sweep records every finished cell, so
# a killed run resumes. Latency is measured inside each cell: run it alone.
#
#   usage: scripts/architectures-fashion-mnist.sh      REPORT_NOTE="..." adds a sentence to every report
#
# On 2 CPU cores: the six baselines (8 epochs each) take a few hours the first time (cached afterwards), the 36
# cells a few more.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
NAME=architectures-fashion-mnist
DIR="runs/sweeps/$NAME"
OUT="reports/$NAME"
[ -d /usr/share/datasets/fashion-mnist ] || { apt-get update && apt-get install -y dataset-fashion-mnist; }
mkdir -p "$DIR" "$OUT"
$BIN/compressor sweep --grid "scripts/grids/$NAME.toml" --out "$DIR" --quiet 2>&1 | tee -a "$DIR.log" \
  || echo "some cells failed (reasons in $DIR/cells/); the reports list them" >&2
for arch in $($BIN/python -c 'import tomllib, sys; print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["archs"]))' \
                "scripts/grids/$NAME.toml"); do
  slug="$(printf %s "$arch" | tr -c 'A-Za-z0-9.+_\n-' _)"
  mapfile -t runs < <(ls "$DIR"/runs/"$slug"-*.json 2>/dev/null | grep -v '\.layers\.' || true)
  [ "${#runs[@]}" -gt 0 ] || { echo "no finished run of $arch" >&2; continue; }
  $BIN/compressor report "${runs[@]}" --out "$OUT/${slug}" --reference int8 \
    --title "$arch on Fashion-MNIST: int8 and structured + int8 with recovery" \
    --note "Regenerate: \`scripts/architectures-fashion-mnist.sh\` (the grid is \`scripts/grids/$NAME.toml\`).${REPORT_NOTE:+ $REPORT_NOTE}"
done
$BIN/python scripts/architectures_summary.py "$OUT"
