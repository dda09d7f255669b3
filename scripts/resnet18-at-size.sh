#!/usr/bin/env bash
# A standard torchvision ResNet18 trained, compressed and timed at one size: reports/resnet18-${SIZE}px-fashion-mnist/.
# Fashion-MNIST upsampled to SIZE px (default 112: 224 px training does not fit 2 CPU cores' budget), one dense
# baseline (EPOCHS epochs, bf16 where the probe says it pays), then int8 alone and channels/blocks + int8 with
# FINETUNE epochs of recovery fine-tuning, each over SEEDS; every run times its baseline and its result together in
# PROCESSES fresh processes (ONNX Runtime, batch 1). Finished runs are kept, so a killed script resumes.
# Run it alone: the latency is measured inside each run.
#
#   usage: scripts/resnet18-at-size.sh          (SIZE, EPOCHS, FINETUNE, SEEDS, PROCESSES from the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE="${SIZE:-112}"
EPOCHS="${EPOCHS:-2}"
FINETUNE="${FINETUNE:-0.5}"
SEEDS="${SEEDS:-0 1}"
PROCESSES="${PROCESSES:-5}"
BIN=.venv/bin
DIR="runs/resnet18-${SIZE}px-fashion-mnist"
OUT="reports/resnet18-${SIZE}px-fashion-mnist"
BASELINE="$DIR/baseline.pt"
mkdir -p "$DIR/runs"

[ -f "$BASELINE" ] || $BIN/compressor train -o "$BASELINE" --arch resnet18 --data fashion-mnist --input-size "$SIZE" \
  --epochs "$EPOCHS" --precision auto --quiet
# int8 alone gets no fine-tuning: its row is what quantizing the dense model costs and buys.
for spec in "int8 - 0" "channels+int8 0.5 $FINETUNE" "blocks+int8 0.25 $FINETUNE"; do
  read -r strategy amount finetune <<< "$spec"
  for seed in $SEEDS; do
    name="$strategy$([ "$amount" = - ] || echo "-$amount")-ft$finetune-s$seed"
    [ -f "$DIR/runs/$name.json" ] || $BIN/compressor run --model "$BASELINE" --strategy "$strategy" \
      $([ "$amount" = - ] || echo "--amount $amount") --finetune-epochs "$finetune" --seed "$seed" \
      --processes "$PROCESSES" --backends onnxruntime --compress none --quiet -o "$DIR/runs/$name.json"
  done
done
$BIN/python scripts/resnet18_at_size_report.py "$DIR/runs" --out "$OUT" --command \
  "SIZE=$SIZE EPOCHS=$EPOCHS FINETUNE=$FINETUNE SEEDS=\"$SEEDS\" PROCESSES=$PROCESSES scripts/resnet18-at-size.sh"
