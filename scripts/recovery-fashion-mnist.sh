#!/usr/bin/env bash
# Issue 17's recovery report, reports/recovery-fashion-mnist/: anchor-recipe ResNet18 (small-input stem) baselines
# on Fashion-MNIST for seeds 0-2, then the recovery grid (scripts/grids/recovery-*.toml) on the seed-0 baseline in
# each recovery mode, then the SupCon DenseNet201 classifier's cells, then the report. Every step skips what is already recorded, so a killed run resumes.
#
#   usage: scripts/recovery-fashion-mnist.sh        (WORK=runs/recovery-fashion-mnist by default)
#
# On 2 CPU cores: ~25 min per baseline (bf16 chosen by the probe on an AVX-512 BF16 CPU; ~45 min in fp32), and
# ~3-6 min per grid cell. Latency inside cells is only comparable when nothing else runs beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
WORK="${WORK:-runs/recovery-fashion-mnist}"
mkdir -p "$WORK"
[ -d /usr/share/datasets/fashion-mnist ] || { apt-get update && apt-get install -y dataset-fashion-mnist; }

for seed in 0 1 2; do
  [ -f "$WORK/baseline-s$seed.pt" ] || $BIN/compressor train --arch resnet18-s1 --recipe anchor \
    --data fashion-mnist --seed "$seed" --quiet -o "$WORK/baseline-s$seed.pt"
done

# mode NAME GRID [compressor sweep options...]: one recovery mode over a grid, on the seed-0 baseline.
mode() {
  local name="$1" grid="$2"; shift 2
  $BIN/compressor sweep --grid "scripts/grids/$grid.toml" --model "$WORK/baseline-s0.pt" -o "$WORK/$name" \
    --quiet "$@" || echo "some $name cells failed (reasons in $WORK/$name/cells/); the report lists them" >&2
}
mode plain recovery-fashion-mnist
mode distilled recovery-fashion-mnist --run-arg=--distill
mode gradual recovery-fashion-mnist --strategies channels --amounts 0.5 --run-arg=--prune-steps=4
mode budgets recovery-budgets-fashion-mnist
# Not run for the committed report (CPU budget), ready to add: distilled budgets, gradual distilled.
#   mode budgets-distilled recovery-budgets-fashion-mnist --run-arg=--distill
#   mode gradual-distilled recovery-fashion-mnist --strategies channels --amounts 0.5 --run-arg=--prune-steps=4 \
#     --run-arg=--distill

# The DenseNet201 SupCon + linear classifier: what recovery settings cost the dense model (the probe), then
# channels and blocks 0.5 under the standard and the frozen-encoder recovery recipes (auto picks the latter).
SUPCON=runs/supcon-fashion-mnist/supcon-classifier.pt
[ -f "$SUPCON" ] || CLASSIFIER_ONLY=1 scripts/supcon-fashion-mnist.sh
$BIN/python scripts/supcon_recovery_probe.py "$SUPCON" -o reports/recovery-fashion-mnist/supcon-dense-probe.json
supcon_mode() {
  local name="$1"; shift
  $BIN/compressor sweep --grid scripts/grids/recovery-supcon-fashion-mnist.toml --model "$SUPCON" -o "$WORK/$name" \
    --quiet "$@" || echo "some $name cells failed (reasons in $WORK/$name/cells/); the report lists them" >&2
}
supcon_mode supcon-standard --run-arg=--recovery-recipe=standard
supcon_mode supcon-frozen-encoder

$BIN/python scripts/recovery_report.py "$WORK" -o reports/recovery-fashion-mnist --note "${REPORT_NOTE:-}"
