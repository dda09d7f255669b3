#!/usr/bin/env bash
# The second-order reports: reports/second-order-fashion-mnist/ (ResNet18) and reports/second-order-densenet201-supcon/
# (the SupCon DenseNet201 classifier). Each grid is in scripts/grids/; every cell is a `compressor run` with BatchNorm
# recalibration after the strategy, which records its accuracy before (the strategy alone) and after. A sweep records
# every finished cell, so a killed run resumes; the report is rebuilt from what is recorded. Accuracy is the
# measurement (no ONNX Runtime timing), so the cells may share the machine with each other (JOBS, default 1).
#
#   usage: scripts/second-order-reports.sh [resnet18|densenet201|all]   (default resnet18)
#   JOBS=2 runs two cells at a time; REPORT_NOTE="..." adds a sentence to the report.
#
# ResNet18: 54 cells, ~3 h on 2 CPU cores (FishLeg and WoodFisher cells take 4-8 min of strategy time each).
# DenseNet201: 45 cells; needs runs/supcon-fashion-mnist/supcon-classifier.pt (CLASSIFIER_ONLY=1
# scripts/supcon-fashion-mnist.sh) and many hours on a CPU (an OBD cell alone takes ~5 min there).
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-resnet18}"
BIN=.venv/bin

# report NAME WHICH TITLE NOTE [compressor sweep options...]: run the grid, then write reports/NAME from its cells.
report() {
  local name="$1" which="$2" title="$3" note="$4"; shift 4
  local dir="runs/sweeps/$name"
  mkdir -p "$dir"
  $BIN/compressor sweep --grid "scripts/grids/$name.toml" --out "$dir" --jobs "${JOBS:-1}" --quiet "$@" 2>&1 \
    | tee -a "$dir.log" || echo "some cells failed (reasons in $dir/cells/); the report lists them" >&2
  # what scripts/second_order_table.py wrote there before goes: its per-cell files, dense model, environment, notes
  # and figures would otherwise sit beside the new report and contradict it (gradual/ and the FishLeg probes stay)
  rm -rf "reports/$name/cells" "reports/$name/cpu-check" "reports/$name/dense.json" "reports/$name/environment.json" \
    "reports/$name/notes.md" "reports/$name/accuracy.png"
  $BIN/compressor report "$dir" --out "reports/$name" --title "$title" --reference l1 --before-recovery \
    --note "$note
Regenerate: \`scripts/second-order-reports.sh $which\` (the grid is \`scripts/grids/$name.toml\`).
Global one-shot pruning, no fine-tuning, three seeds (each the strategy's gradient and Fisher batches and the
BatchNorm recalibration's batch order; one model). Every run recalibrates BatchNorm after its strategy (2560
training images), the same help for every method; *before recovery* is the accuracy the strategy alone reached,
measured in the same run.${REPORT_NOTE:+ $REPORT_NOTE}"
  $BIN/python scripts/second_order_targets.py "$dir" "reports/$name"
}

case "$WHICH" in resnet18|densenet201|all) ;; *) echo "usage: $0 [resnet18|densenet201|all]" >&2; exit 2;; esac
if [ "$WHICH" = resnet18 ] || [ "$WHICH" = all ]; then
  report second-order-fashion-mnist resnet18 "Second-order pruning on ResNet18 / Fashion-MNIST: one-shot over seeds" \
    "ResNet18 trained from scratch on Fashion-MNIST at 32 px (8 epochs, the baseline cached by \`compressor run\`)."
fi
if [ "$WHICH" = densenet201 ] || [ "$WHICH" = all ]; then
  MODEL=runs/supcon-fashion-mnist/supcon-classifier.pt
  [ -f "$MODEL" ] || CLASSIFIER_ONLY=1 scripts/supcon-fashion-mnist.sh
  report second-order-densenet201-supcon densenet201 "Second-order pruning on the SupCon DenseNet201: one-shot over seeds" \
    "DenseNet201 pre-trained with SupCon and linearly evaluated on Fashion-MNIST at 32 px (reports/supcon/)." \
    --model "$MODEL"
fi
