"""reports/digits-examples/README.md and the fragments docs/ include from the digits ResNet18 runs beside them, rendered
from the run reports so no figure of them is copied by hand.

    .venv/bin/python scripts/digits_examples_report.py [reports/digits-examples]

scripts/digits-examples.sh runs the reports and then this script; tests/reports/test_fragments.py compares every text
`render_fragments` returns (the README included) with the committed file. Fragments: `one-thread.md` (docs/index.md),
`channels-global.md`, `competition-preset.md`, `competition-recovery.md`, `int8-zip.md` (docs/strategies.md),
`distillation.md` (docs/recovery.md, with the paired t-test of compressor.report.uncertainty).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from compressor.report.numbers import in_words, megabytes, p_value, percent, signed, the_one
from compressor.report.uncertainty import binomial_se, paired_test, test_set_se

NAMES = ("l1-0.5", "int8-zip", "blocks-competition-no-recal", "blocks-competition", "blocks-competition-ft15",
         "channels-global-0.9", *(f"channels-0.5-ft3-{d}s{s}" for s in range(3) for d in ("", "distill-")))
QUOTED_IN = {  # where README.md and docs/ quote each run
    "l1-0.5": "docs/index.md (the demo's command)",
    "int8-zip": "docs/strategies.md, int8",
    "blocks-competition-no-recal": "docs/strategies.md, blocks",
    "blocks-competition": "docs/strategies.md, blocks",
    "blocks-competition-ft15": "docs/strategies.md, blocks",
    "channels-global-0.9": "docs/strategies.md, channels (`max_layer_ratio`)",
}
SEEDS = range(3)
Run = dict[str, Any]


def _pct(x: float) -> str:
    return f"{percent(x)} %"


def _quoted_in(name: str) -> str:
    return "docs/recovery.md, distillation (mean ± sd below)" if name.startswith("channels-0.5") else QUOTED_IN[name]


def _channel_losses(record: dict[str, Any]) -> dict[str, float]:
    return {name: 1 - layer["channels_after"] / layer["channels_before"] for name, layer in record["layers"].items()}


def _figures(run: Run) -> str:
    b, c = run["baseline"], run["compressed"]
    ort = c["evaluation"].get("onnxruntime", {})
    items = [f"baseline `{Path(run['model']['baseline']).name}`",
             f"top-1 baseline {_pct(b['accuracy'])}, compressed {_pct(c['accuracy'])}"
             f" (`compressed.metrics_from`: {c['metrics_from']})"]
    if "accuracy_before_recovery" in c:
        items.append(f"before recovery {_pct(c['accuracy_before_recovery'])}")
    if "accuracy_fp32" in c:
        items.append(f"fp32 torch {_pct(c['accuracy_fp32'])}")
    if "max_abs_logit_diff_vs_torch" in ort:
        diff = f"{ort['max_abs_logit_diff_vs_torch']:.1e}".replace("e-0", "e-")
        items.append(f"ONNX Runtime {_pct(ort['accuracy'])}, largest logit difference to torch {diff}")
    items += [f"parameters {b['params_total']:,} → {c['params_total']:,}",
              f"conv/linear sparsity {_pct(c['sparsity'])}",
              f"fp32 state_dict file {megabytes(b['size_bytes'])} MB → {megabytes(c['size_bytes'])} MB",
              f"deployable file {megabytes(b['deployable_bytes'])} MB → {megabytes(c['deployable_bytes'])} MB"]
    for step in run["steps"]:
        record = step["record"]
        if "sparsity" in record:
            items.append(f"`steps[].record.sparsity` of {step['strategy']}: {record['sparsity']}")
        if "channel_ratio_removed" in record:
            lost = _channel_losses(record)
            worst = max(lost, key=lost.__getitem__)
            items.append(f"channels removed {100 * record['channel_ratio_removed']:.1f} % overall, at most "
                         f"{100 * lost[worst]:.1f} % in one layer ({worst}, "
                         f"{record['layers'][worst]['channels_before']} → {record['layers'][worst]['channels_after']})")
    return "; ".join(items)


def _seed_accuracies(runs: dict[str, Run], distill: bool) -> list[float]:
    return [100 * runs[f"channels-0.5-ft3-{'distill-' if distill else ''}s{s}"]["compressed"]["accuracy"]
            for s in SEEDS]


def render_readme(runs: dict[str, Run]) -> str:
    """The report's README: every run's command, where the docs quote it, and its figures."""
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
        *(f"| `{name}.json` | `{runs[name]['command']}` | {_quoted_in(name)} | {_figures(runs[name])} |"
          for name in NAMES),
    ]
    plain, distilled = _seed_accuracies(runs, False), _seed_accuracies(runs, True)

    def summary(accuracies: list[float]) -> str:
        return (f"{statistics.mean(accuracies):.2f} ± {statistics.stdev(accuracies):.2f} % "
                f"({', '.join(f'{a:.2f}' for a in accuracies)})")

    lines += [
        "",
        "## Distillation on channels 0.5 (3 epochs of fine-tuning, seeds 0-2)",
        "",
        "Mean ± sample standard deviation over the three seeds of `compressed.accuracy`:",
        "",
        f"- without distillation (`channels-0.5-ft3-s0.json` … `-s2.json`): {summary(plain)}",
        f"- with `--distill` (`channels-0.5-ft3-distill-s0.json` … `-s2.json`): {summary(distilled)}",
        "",
        "## Environment (of `l1-0.5.json`)",
        "",
        "```",
        json.dumps(runs["l1-0.5"]["environment"], indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def _distillation(runs: dict[str, Run]) -> str:
    """docs/recovery.md: distillation against plain fine-tuning, paired by seed (each seed has its own baseline)."""
    # a run's `compressed` block has what a report row has for the test set's noise: accuracy, samples (and
    # `correct`, the per-image record, in runs that kept it)
    pairs = [(runs[f"channels-0.5-ft3-distill-s{s}"]["compressed"], runs[f"channels-0.5-ft3-s{s}"]["compressed"])
             for s in SEEDS]
    plain, distilled = _seed_accuracies(runs, False), _seed_accuracies(runs, True)
    test = paired_test([a - b for a, b in zip(distilled, plain)], test_set_se(pairs))
    samples = the_one(sorted({row["samples"] for pair in pairs for row in pair}), "test images")
    verdict = {"no difference": "no difference is established",
               "better": "distillation is better", "worse": "distillation is worse"}[test.verdict]
    return (f"On the digits ResNet18 (channels 0.5, 3 epochs of fine-tuning, seeds {SEEDS[0]}-{SEEDS[-1]}, each seed "
            f"with its own baseline) distillation gave {statistics.fmean(distilled):.2f} ± "
            f"{statistics.stdev(distilled):.2f} % against {statistics.fmean(plain):.2f} ± {statistics.stdev(plain):.2f}"
            " % without it (`compressor run -s channels --amount 0.5 --finetune-epochs 3 --seed S [--distill]`; the "
            "six reports are `reports/digits-examples/channels-0.5-ft3-*.json`, the means in "
            f"`reports/digits-examples/README.md`): a paired difference of {signed(test.mean)} points over "
            f"{in_words(len(pairs))} seeds on {samples} test images ({test.test}, p {p_value(test.p)}), so "
            f"{verdict}.\n")


def render_fragments(root: Path) -> dict[str, str]:
    """The README and the fragments of reports/digits-examples/, by file name."""
    runs = {name: json.loads((root / f"{name}.json").read_text()) for name in NAMES}
    demo = runs["l1-0.5"]
    threads = demo["environment"]["torch_threads"]
    one_thread = (f"{_pct(demo['baseline']['accuracy'])} with {'one thread' if threads == 1 else f'{threads} threads'}"
                  " (`reports/digits-examples/l1-0.5.json`, whose baseline a one-thread job trained).\n")

    channels = runs["channels-global-0.9"]
    record, params = channels["steps"][0]["record"], channels["params"]["channels"]
    lost = _channel_losses(record)
    worst = max(lost.values())
    names = [name for name, r in lost.items() if r == worst]
    before, after = the_one(sorted({(record["layers"][n]["channels_before"], record["layers"][n]["channels_after"])
                                    for n in names}), "channel counts of the worst layers")
    tp = channels["environment"]["packages"]["torch-pruning"]
    channels_global = (
        f"- `scope`: uniform or global. `max_layer_ratio` is passed to torch-pruning, whose {tp} does not enforce it in"
        f" a one-step global prune: at {params['scope']} {params['amount']:g} (`round_to` {params['round_to']}) "
        f"{in_words(len(names))} coupled layers of the digits ResNet18 lost {100 * worst:.1f} % of their channels "
        f"({', '.join(f'`{n}`' for n in names)}: {before} → {after}; "
        "`reports/digits-examples/channels-global-0.9.json`).\n")

    preset = runs["blocks-competition"]
    competition_preset = (
        "- `-p preset=competition` reproduces the original slimming of ResNet18 to stem + layer1.0 + classifier "
        f"({preset['compressed']['params_total']:,} parameters on digits, "
        "`reports/digits-examples/blocks-competition.json`).\n")

    one_shot = the_one(sorted({runs[n]["compressed"]["accuracy"]
                               for n in ("blocks-competition", "blocks-competition-no-recal")}), "one-shot accuracy")
    tuned = runs["blocks-competition-ft15"]
    guess = 1 / preset["model"]["num_classes"]  # a uniform guess; "chance" within two of its binomial errors
    near_guess = abs(one_shot - guess) <= 2 * (binomial_se(guess, preset["compressed"]["samples"]) or 0.0)
    chance = "chance" if near_guess else "not chance"
    competition_recovery = (
        "Removed modules are gone from the saved checkpoint, which reloads exactly (tested). Fine-tune afterwards: on "
        f"digits the competition preset falls to {_pct(one_shot)} one-shot, {chance}, with or without BatchNorm "
        "recalibration (its classifier is rebuilt; `reports/digits-examples/blocks-competition.json`, "
        f"`reports/digits-examples/blocks-competition-no-recal.json`), and recovers to "
        f"{_pct(tuned['compressed']['accuracy'])} (baseline {_pct(tuned['baseline']['accuracy'])}) with a "
        f"{megabytes(tuned['compressed']['size_bytes'])} MB fp32 file after "
        "(`reports/digits-examples/blocks-competition-ft15.json`):\n")

    zipped = runs["int8-zip"]
    base, comp = zipped["baseline"], zipped["compressed"]
    same = ("before and after" if base["accuracy"] == comp["accuracy"]
            else f"before, {_pct(comp['accuracy'])} after")
    int8_zip = ("On the digits ResNet18 (`compressor run -s int8 --compress zip`, "
                f"`reports/digits-examples/int8-zip.json`): {_pct(base['accuracy'])} {same}, deployable file "
                f"{megabytes(base['deployable_bytes'])} → {megabytes(comp['deployable_bytes'])} MB (int8 ONNX + "
                "zip).\n")
    return {"README.md": render_readme(runs), "one-thread.md": one_thread, "channels-global.md": channels_global,
            "competition-preset.md": competition_preset, "competition-recovery.md": competition_recovery,
            "int8-zip.md": int8_zip, "distillation.md": _distillation(runs)}


def main() -> None:
    from compressor.report.fragments import write_texts

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "reports/digits-examples")
    for path in write_texts(root, render_fragments(root)):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
