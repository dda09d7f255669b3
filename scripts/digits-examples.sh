#!/usr/bin/env bash
# Regenerate reports/digits-examples/: the digits ResNet18 runs whose figures README.md and docs/ quote (the demo's
# l1 0.5, int8 with zip, the blocks competition preset, global channels 0.9, channels 0.5 with and without
# distillation over 3 seeds), one JSON report per run, then reports/digits-examples/README.md and the fragments docs/
# include, written from those JSONs by scripts/digits_examples_report.py (so their figures cannot drift from the files).
# About 22 min on 2 busy cores (niced, beside a sweep), two digits baselines (seeds 1, 2) included: an estimate.
# Finished runs (their JSON exists) are skipped, so an interrupted script resumes; delete a JSON to rerun it.
# Baselines come from the cache (~/.cache/compressor); seeds 1 and 2 train their own digits baseline if missing.
# Accuracy, sizes, parameters and sparsity are deterministic; latency depends on what else the machine runs, and
# no latency from these runs is quoted anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/digits-examples}
COMPRESSOR=${COMPRESSOR:-.venv/bin/compressor}
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"

one() {  # one NAME ARGS...: one `compressor run` into $OUT/NAME.json; its checkpoint is deleted (44 MB, not kept)
    local name=$1; shift
    local report="$OUT/$name.json"
    [[ -f $report ]] && { echo "skip $report (done)"; return; }
    echo "== $name: compressor run $*"
    local start=$SECONDS
    "$COMPRESSOR" run "$@" --quiet --output "$report" > /dev/null
    rm -f "${report%.json}.pt"
    echo "   $((SECONDS - start)) s"
}

one l1-0.5 -s l1 --amount 0.5
one int8-zip -s int8 --compress zip
one blocks-competition-no-recal -s blocks -p preset=competition --no-bn-recalibrate
one blocks-competition -s blocks -p preset=competition
one blocks-competition-ft15 -s blocks -p preset=competition --finetune-epochs 15 --finetune-lr 0.1
one channels-global-0.9 -s channels --amount 0.9 -p scope=global -p round_to=1
for seed in 0 1 2; do
    one "channels-0.5-ft3-s$seed" -s channels --amount 0.5 --finetune-epochs 3 --seed "$seed"
    one "channels-0.5-ft3-distill-s$seed" -s channels --amount 0.5 --finetune-epochs 3 --seed "$seed" --distill
done

# README.md and the docs fragments, rendered from the JSON reports
"$PYTHON" scripts/digits_examples_report.py "$OUT"
