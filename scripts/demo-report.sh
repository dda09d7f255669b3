#!/usr/bin/env bash
# Regenerate reports/demo/: exactly `make demo`'s command, on an empty cache so the digits baseline is trained as a
# new user's is, with its printed output (output.txt, shown in the README) and its JSON report. Run it alone: the
# latency rows are measured, and other work on the machine changes them.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=$(mktemp -d)
trap 'rm -rf "$CACHE"' EXIT
mkdir -p reports/demo
start=$(date +%s)
COLUMNS=100 COMPRESSOR_CACHE="$CACHE" .venv/bin/compressor run --strategy l1 --amount 0.5 > reports/demo/output.txt
echo "$(( $(date +%s) - start )) s wall (baseline training included) on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  > reports/demo/wall-time.txt
cp runs/resnet18-digits-l1-0.5.json reports/demo/resnet18-digits-l1-0.5.json
cat reports/demo/output.txt reports/demo/wall-time.txt
.venv/bin/python scripts/demo_fragments.py reports/demo  # the sentences README.md and docs/index.md show
