#!/usr/bin/env bash
# The two committed sweep reports: reports/resnet18-fashion-mnist/ and reports/densenet201-supcon-fashion-mnist/.
# Each grid is in scripts/grids/. A sweep records every finished cell, so a killed run resumes where it stopped;
# scores and the report are rebuilt from what is recorded. Do not run other heavy work beside it: latency is
# measured inside each cell, and two torch processes on 2 cores slow each other down ~8x.
#
#   usage: scripts/fashion-mnist-reports.sh [resnet18|densenet201|all]   (default all)
#   REPORT_NOTE="..." adds a sentence to both reports (e.g. how the machine was shared while they ran).
#
# ResNet18: ~1 h 50 min on 2 CPU cores (an estimate from the cells' recorded seconds; plus ~30 min the first time,
# to train the cached baseline). Every cell records the commit it ran at: regenerate a report in one go, at one commit.
# DenseNet201: needs runs/supcon-fashion-mnist/supcon-classifier.pt from scripts/supcon-fashion-mnist.sh (~75 min).
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-all}"
BIN=.venv/bin
IMAGES=runs/fashion-mnist-test-imagefolder
PER_CLASS=100

$BIN/python scripts/test_split_imagefolder.py fashion-mnist "$IMAGES" --per-class "$PER_CLASS"

# sweep NAME TITLE NOTE [compressor sweep options...]: run the grid, score every model, write reports/NAME.
sweep() {
  local name="$1" title="$2" note="$3"; shift 3
  local dir="runs/sweeps/$name" scores="runs/sweeps/$name-openaimer"
  mkdir -p "$dir" "$scores"
  $BIN/compressor sweep --grid "scripts/grids/$name.toml" --out "$dir" --quiet "$@" 2>&1 | tee -a "$dir.log" \
    || echo "some cells failed (reasons in $dir/cells/); the report lists them" >&2
  local baseline
  baseline="$($BIN/python -c 'import json, pathlib, sys
cells = sorted(pathlib.Path(sys.argv[1]).glob("cells/*.json"))
print(json.loads(cells[0].read_text())["report"]["model"]["baseline"])' "$dir")"
  for checkpoint in "$baseline" "$dir"/runs/*.pt; do
    local out="$scores/$(basename "$checkpoint" .pt).json"
    [ -f "$out" ] || $BIN/compressor score "$checkpoint" --data "imagefolder:$IMAGES" --quiet -o "$out"
  done
  mkdir -p "reports/$name/openaimer"
  cp "$scores"/*.json "reports/$name/openaimer/"  # the score files the report's OpenAImer table is built from
  $BIN/compressor report "$dir" --out "reports/$name" --title "$title" --openaimer "reports/$name/openaimer" \
    --reference l1 --note "$note
Regenerate: \`scripts/fashion-mnist-reports.sh ${name%%-*}\` (the grid is \`scripts/grids/$name.toml\`). One-shot
cells and cells with a quarter-epoch recovery fine-tune (114 steps of 128 images, one-cycle LR peaking at 0.01,
pruned weights held at zero); fine-tuning changes accuracy, not size. The OpenAImer scores use the first
$PER_CLASS test images of each class ($((PER_CLASS * 10)) images) as an ImageFolder.${REPORT_NOTE:+ $REPORT_NOTE}"
}

if [ "$WHICH" = resnet18 ] || [ "$WHICH" = all ]; then
  sweep resnet18-fashion-mnist "ResNet18 on Fashion-MNIST: every strategy, one-shot and fine-tuned" \
    "ResNet18 trained from scratch on Fashion-MNIST at 32 px (8 epochs, cached by \`compressor run\`)."
fi
if [ "$WHICH" = densenet201 ] || [ "$WHICH" = all ]; then
  MODEL=runs/supcon-fashion-mnist/supcon-classifier.pt
  [ -f "$MODEL" ] || scripts/supcon-fashion-mnist.sh
  sweep densenet201-supcon-fashion-mnist "SupCon DenseNet201 on Fashion-MNIST: strategies compared" \
    "DenseNet201 pre-trained with SupCon and linearly evaluated on Fashion-MNIST at 32 px (reports/supcon/)." \
    --model "$MODEL"
fi
