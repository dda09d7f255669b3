#!/usr/bin/env bash
# Regenerate reports/resnet18-fashion-mnist-strategies/: every strategy at amount 0.5 (2:4 for nm) on the cached
# ResNet18 Fashion-MNIST baseline, one-shot and with one epoch of fine-tuning, then the summary table.
# Finished runs (their JSON exists) are skipped, so an interrupted script resumes where it stopped.
# About 1 h on 2 CPU cores, plus ~17 min for the baseline if it is not cached yet.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/resnet18-fashion-mnist-strategies}
COMPRESSOR=${COMPRESSOR:-.venv/bin/compressor}

each() {  # each NAME ARGS...: one run without and one with a 1-epoch fine-tune
    local name=$1; shift
    for ft in 0 1; do
        local report="$OUT/runs/$name-ft$ft.json"
        [[ -f $report ]] && { echo "skip $report (done)"; continue; }
        echo "== $name, fine-tune epochs $ft"
        "$COMPRESSOR" run "$@" --data fashion-mnist --finetune-epochs "$ft" --quiet --output "$report" >/dev/null
    done
}

each l1 -s l1 --amount 0.5
each layer-sensitive -s layer-sensitive --amount 0.5
each channels -s channels --amount 0.5
each blocks -s blocks --amount 0.5
each nm -s nm
each int8 -s int8
each blocks+l1+int8 -s blocks+l1+int8 -p blocks.amount=0.25 -p l1.amount=0.5
"$COMPRESSOR" report "$OUT"/runs/*.json --out "$OUT" \
    --title "ResNet18 on Fashion-MNIST: every strategy, one-shot and with 1 epoch of fine-tuning"
