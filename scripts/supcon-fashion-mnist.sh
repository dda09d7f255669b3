#!/usr/bin/env bash
# DenseNet201 on Fashion-MNIST: SupCon pre-training + linear evaluation vs cross-entropy on the same budget.
# Regenerates reports/supcon/. Each step is skipped when its output exists, so a killed run resumes
# (pre-training itself resumes from its per-epoch checkpoint). ~70 min on 2 CPU cores; do not run other
# training beside it (two torch processes on 2 cores slow each other down ~8x).
#
#   usage: scripts/supcon-fashion-mnist.sh [EPOCHS]     (SupCon epochs, default 2; cross-entropy gets EPOCHS x 2)
#   CLASSIFIER_ONLY=1 stops once runs/supcon-fashion-mnist/supcon-classifier.pt exists (~40 min; for the recovery
#   report), without the cross-entropy baseline or the report.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${1:-2}"
RUNS=runs/supcon-fashion-mnist
REPORT=reports/supcon
BIN=.venv/bin
mkdir -p "$RUNS" "$REPORT"
LOGS="$REPORT"; [ -z "${CLASSIFIER_ONLY:-}" ] || LOGS="$RUNS"  # the committed report's logs stay untouched
DATA=(--data fashion-mnist)

[ -f "$RUNS/pretrain.done" ] || {
  $BIN/supcon pretrain --arch densenet201 "${DATA[@]}" --epochs "$EPOCHS" --batch-size 128 --lr 0.1 \
    --temperature 0.1 --seed 0 -o "$RUNS/pretrain.pt" 2>&1 | tee "$LOGS/pretrain.log"
  touch "$RUNS/pretrain.done"; }
[ -f "$RUNS/supcon-classifier.pt" ] || \
  $BIN/supcon linear "$RUNS/pretrain.pt" -o "$RUNS/supcon-classifier.pt" --epochs 30 --lr 0.1 2>&1 \
    | tee "$LOGS/linear.log"
[ -z "${CLASSIFIER_ONLY:-}" ] || exit 0
$BIN/supcon evaluate "$RUNS/supcon-classifier.pt" --out "$REPORT/supcon"
[ -f "$RUNS/ce-classifier.pt" ] || \
  $BIN/supcon baseline --arch densenet201 "${DATA[@]}" --budget-from "$RUNS/pretrain.pt" --seed 0 \
    -o "$RUNS/ce-classifier.pt" 2>&1 | tee "$REPORT/baseline.log"
$BIN/supcon evaluate "$RUNS/ce-classifier.pt" --out "$REPORT/cross-entropy"
$BIN/supcon tsne "$RUNS/pretrain.pt" -o "$REPORT/tsne.png" --samples 2000 \
  --classifier "cross-entropy, same budget=$RUNS/ce-classifier.pt"
$BIN/python scripts/supcon_report.py "$REPORT" --command "scripts/supcon-fashion-mnist.sh $EPOCHS"
