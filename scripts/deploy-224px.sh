#!/usr/bin/env bash
# reports/deploy-224px/, regenerated in one command: the `compressor run --deploy-size 224` headline run (channels 0.5
# with round_to 16 + int8 after 2 distilled epochs, on the recovery work's seed-0 baseline), then
# scripts/deploy_224px.py (every recovery model timed at 224 px in interleaved rounds), with the busiest processes
# sampled every 10 s into the report's process-samples.log (the docs quote how long it was sampled).
#
#   usage: scripts/deploy-224px.sh     needs runs/recovery-fashion-mnist/ from scripts/recovery-fashion-mnist.sh
#                                      (at least its seed-0 baseline and its plain and distilled modes)
#
# ~25 min alone on 2 cores (the headline run ~10, the script ~15). Run it alone: it is a latency measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
OUT=reports/deploy-224px
BASELINE=runs/recovery-fashion-mnist/baseline-s0.pt
[ -f "$BASELINE" ] || { echo "no $BASELINE: run scripts/recovery-fashion-mnist.sh first" >&2; exit 2; }
mkdir -p "$OUT/runs"
rm -f "$OUT"/runs/*
: > "$OUT/process-samples.log"
( while true; do date -u +%T; ps -eo pcpu,etimes,args --sort=-pcpu | head -4 | cut -c1-200; sleep 10; done \
    >> "$OUT/process-samples.log" ) &
sampler=$!
trap 'kill $sampler 2>/dev/null' EXIT
$BIN/compressor run -s channels+int8 --amount 0.5 -p channels.round_to=16 --arch resnet18-s1 --data fashion-mnist \
  --model "$BASELINE" --finetune-epochs 2 --distill --seed 0 --deploy-size 224 --batch-sizes 1,8 \
  --backends torch,onnxruntime --compress zip -o "$OUT/runs/channels-r16+int8-0.5-ft2-distill.json" --quiet
$BIN/python scripts/deploy_224px.py
