#!/usr/bin/env bash
# Regenerate reports/digits-examples/: the digits ResNet18 runs whose figures README.md and docs/ quote (the demo's
# l1 0.5, int8 with zip, the blocks competition preset, global channels 0.9, channels 0.5 with and without
# distillation over 3 seeds), one JSON report per run, then reports/digits-examples/README.md, written from those
# JSONs by the Python at the end of this script (so its figures cannot drift from the files).
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
: > "$OUT/.commands.tmp"

one() {  # one NAME ARGS...: one `compressor run` into $OUT/NAME.json; its checkpoint is deleted (44 MB, not kept)
    local name=$1; shift
    local report="$OUT/$name.json"
    printf '%s\t%s\n' "$name" "compressor run $* --quiet --output $report" >> "$OUT/.commands.tmp"
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

"$PYTHON" - "$OUT" <<'EOF'
"""Write OUT/README.md from the JSON reports and the commands this script ran."""
import json
import statistics
import sys
from pathlib import Path

out = Path(sys.argv[1])
commands = dict(line.split("\t", 1) for line in (out / ".commands.tmp").read_text().splitlines())
(out / ".commands.tmp").unlink()
runs = {name: json.loads((out / f"{name}.json").read_text()) for name in commands}


def pct(x):
    return f"{100 * x:.2f} %"


def mb(n):
    return f"{n / 1e6:.2f} MB"


QUOTED_IN = {  # where README.md and docs/ quote each run
    "l1-0.5": "docs/index.md (the demo's command)",
    "int8-zip": "docs/strategies.md, int8",
    "blocks-competition-no-recal": "docs/strategies.md, blocks",
    "blocks-competition": "docs/strategies.md, blocks",
    "blocks-competition-ft15": "docs/strategies.md, blocks",
    "channels-global-0.9": "docs/strategies.md, channels (`max_layer_ratio`)",
}


def quoted_in(name):
    return "docs/recovery.md, distillation (mean ± sd below)" if name.startswith("channels-0.5") else QUOTED_IN[name]


def figures(name, r):
    b, c = r["baseline"], r["compressed"]
    ort = c["evaluation"].get("onnxruntime", {})
    items = [f"baseline `{Path(r['model']['baseline']).name}`",
             f"top-1 baseline {pct(b['accuracy'])}, compressed {pct(c['accuracy'])}"
             f" (`compressed.metrics_from`: {c['metrics_from']})"]
    if "accuracy_before_recovery" in c:
        items.append(f"before recovery {pct(c['accuracy_before_recovery'])}")
    if "accuracy_fp32" in c:
        items.append(f"fp32 torch {pct(c['accuracy_fp32'])}")
    if "max_abs_logit_diff_vs_torch" in ort:
        diff = f"{ort['max_abs_logit_diff_vs_torch']:.1e}".replace("e-0", "e-")
        items.append(f"ONNX Runtime {pct(ort['accuracy'])}, largest logit difference to torch {diff}")
    items.append(f"parameters {b['params_total']:,} → {c['params_total']:,}")
    items.append(f"conv/linear sparsity {pct(c['sparsity'])}")
    items.append(f"fp32 state_dict file {mb(b['size_bytes'])} → {mb(c['size_bytes'])}")
    items.append(f"deployable file {mb(b['deployable_bytes'])} → {mb(c['deployable_bytes'])}")
    for step in r["steps"]:
        record = step["record"]
        if "sparsity" in record:
            items.append(f"`steps[].record.sparsity` of {step['strategy']}: {record['sparsity']}")
        if "channel_ratio_removed" in record:
            lost = {name: 1 - layer["channels_after"] / layer["channels_before"]
                    for name, layer in record["layers"].items()}
            worst = max(lost, key=lost.get)
            items.append(f"channels removed {100 * record['channel_ratio_removed']:.1f} % overall, at most "
                         f"{100 * lost[worst]:.1f} % in one layer ({worst}, "
                         f"{record['layers'][worst]['channels_before']} → {record['layers'][worst]['channels_after']})")
    return "; ".join(items)


lines = [
    "# Digits examples: the digits ResNet18 figures quoted in README.md and docs/",
    "",
    "Regenerate: `scripts/digits-examples.sh` (finished runs are skipped; delete a JSON to rerun it). This page is "
    "written by that script from the JSON reports beside it.",
    "",
    "Every run is `compressor run` on the cached digits ResNet18 baseline (`--data digits`, the default: 360 test "
    "images at 32 px; `--seed S` also selects the baseline trained with seed S). Accuracy, parameters, sparsity "
    "and file sizes are deterministic. **Latency is not quoted from these runs**: they ran beside other jobs on a "
    "2-core machine, so the latency blocks in the JSONs measure that load as much as the models.",
    "",
    "Each JSON also holds its run's environment and commit; the per-layer plot it names under `plots` is the "
    "`.layers.png` beside it. The checkpoints the runs write are deleted.",
    "",
    "| file | command | quoted in | figures |",
    "|---|---|---|---|",
]
for name, command in commands.items():
    lines.append(f"| `{name}.json` | `{command}` | {quoted_in(name)} | {figures(name, runs[name])} |")

plain = [runs[f"channels-0.5-ft3-s{s}"]["compressed"]["accuracy"] * 100 for s in range(3)]
distilled = [runs[f"channels-0.5-ft3-distill-s{s}"]["compressed"]["accuracy"] * 100 for s in range(3)]
lines += [
    "",
    "## Distillation on channels 0.5 (3 epochs of fine-tuning, seeds 0-2)",
    "",
    "Mean ± sample standard deviation over the three seeds of `compressed.accuracy`:",
    "",
    f"- without distillation (`channels-0.5-ft3-s0.json` … `-s2.json`): {statistics.mean(plain):.2f} ± "
    f"{statistics.stdev(plain):.2f} % ({', '.join(f'{a:.2f}' for a in plain)})",
    f"- with `--distill` (`channels-0.5-ft3-distill-s0.json` … `-s2.json`): {statistics.mean(distilled):.2f} ± "
    f"{statistics.stdev(distilled):.2f} % ({', '.join(f'{a:.2f}' for a in distilled)})",
    "",
    "## Environment (of `l1-0.5.json`)",
    "",
    "```",
    json.dumps(runs["l1-0.5"]["environment"], indent=2),
    "```",
    "",
]
(out / "README.md").write_text("\n".join(lines))
print(f"wrote {out / 'README.md'}")
EOF
