"""Render the deployment-size report of a standard ResNet18 from its `compressor run` reports (resnet18-at-size.sh).

Every run compresses the same dense baseline (trained at the size it is timed at), so each pipeline's accuracy is
compared with the dense model seed by seed (`compressor.report.uncertainty.paired_test`: t over the fine-tuning
seeds, plus the test set's binomial noise), and each speed-up is the median of per-process ratios of models timed
together in fresh processes (`compressor.measure.processes.speedup`). Beside every pruned + int8 figure stands
what int8 alone buys on the dense model, so a reader sees what pruning adds.

    .venv/bin/python scripts/resnet18_at_size_report.py RUNS_DIR --out reports/resnet18-112px-fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from compressor._util.fileio import write_atomic, write_json_atomic  # noqa: E402
from compressor.measure.processes import speedup  # noqa: E402
from compressor.report.uncertainty import ALPHA, binomial_se, paired_test  # noqa: E402


def load_runs(directory: Path) -> list[dict[str, Any]]:
    """Every run report in `directory`, sorted by pipeline then seed."""
    runs = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    if not runs:
        raise SystemExit(f"no run reports (*.json) in {directory}")
    return sorted(runs, key=lambda r: (r["strategy"], r["model"]["seed"]))


def row(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run: accuracies, MACs, medians and speed-ups over its dense baseline."""
    base, comp = run["baseline"], run["compressed"]
    base_ort = base["latency"]["onnxruntime"]
    timed = {b: comp["latency"][b] for b in ("onnxruntime", "onnxruntime-int8")
             if "median_ms" in comp["latency"].get(b, {})}
    return {"pipeline": run["strategy"], "seed": run["model"]["seed"], "command": run["command"],
            "input_size": run["model"]["input_size"], "deploy_input_size": comp["deploy_input_size"],
            "dense_accuracy": base["accuracy"], "accuracy": comp["accuracy"], "samples": comp["samples"],
            "accuracy_fp32": comp.get("accuracy_fp32", comp["accuracy"]), "metrics_from": comp["metrics_from"],
            "dense_macs": base["macs"], "macs": comp["macs"], "dense_ort_ms": base_ort["median_ms"],
            "ms": {b: s["median_ms"] for b, s in timed.items()},
            "speedup": {b: speedup(base_ort, s) for b, s in timed.items()},
            "process_spread": {b: s.get("process_spread") for b, s in {"dense": base_ort, **timed}.items()},
            "processes": base_ort.get("processes", 1),
            "under_load": any(s.get("load", {}).get("under_load") for s in [base_ort, *timed.values()]),
            "machine": f"{run['environment'].get('cpu')}, {run['environment'].get('cpu_count')} cores, "
                       f"flags {' '.join(run['environment'].get('isa') or [])}",
            "git_commit": run["environment"]["git_commit"], "git_dirty": run["environment"].get("git_dirty"),
            "finetune_epochs": run["recovery"].get("finetune_epochs", 0),
            "bn_recalibrate": run["recovery"].get("bn_recalibrate")}


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per pipeline: mean accuracy and its change against dense (paired test over seeds), median speed-ups."""
    out = []
    for pipeline in dict.fromkeys(r["pipeline"] for r in rows):
        group = [r for r in rows if r["pipeline"] == pipeline]
        deltas = [100 * (r["accuracy"] - r["dense_accuracy"]) for r in group]
        se = binomial_se(group[0]["dense_accuracy"], group[0]["samples"]) or 0.0
        test = paired_test(deltas, fixed_se=100 * se * 2 ** 0.5)
        backends = sorted({b for r in group for b in r["speedup"]})
        out.append({"pipeline": pipeline, "seeds": [r["seed"] for r in group],
                    "accuracy": statistics.fmean(r["accuracy"] for r in group),
                    "accuracy_sd": statistics.stdev(r["accuracy"] for r in group) if len(group) > 1 else None,
                    "delta_points": test.mean, "half_width": test.half_width, "p": test.p, "test": test.test,
                    "verdict": test.verdict,
                    "macs": group[0]["macs"], "mac_reduction": group[0]["dense_macs"] / group[0]["macs"],
                    "ms": {b: statistics.median(r["ms"][b] for r in group if b in r["ms"]) for b in backends},
                    "speedup": {b: statistics.median(r["speedup"][b] for r in group if b in r["speedup"])
                                for b in backends},
                    "speedups_per_seed": {b: [r["speedup"].get(b) for r in group] for b in backends}})
    return out


def render(rows: list[dict[str, Any]], summary: list[dict[str, Any]], command: str) -> str:
    """The README: what was run, the table, the int8-only speed-up beside each combined figure."""
    first = rows[0]
    int8_only = next((s for s in summary if s["pipeline"] == "int8"), None)
    alone = int8_only["speedup"].get("onnxruntime-int8") if int8_only else None
    int8_finetune = ", ".join(sorted({f"{r['finetune_epochs']:g}" for r in rows if r["pipeline"] == "int8"})) or "-"
    bn = {r["pipeline"]: bool(r["bn_recalibrate"]) for r in rows}
    bn_text = ("on for every run" if all(bn.values()) else "off for every run" if not any(bn.values())
               else ", ".join(f"{k} {'on' if v else 'off'}" for k, v in bn.items()))
    commits = sorted({r["git_commit"] for r in rows})
    dirty = any(r["git_dirty"] for r in rows)
    lines = ["# Standard ResNet18 on Fashion-MNIST, trained and timed at the same size\n",
             f"Regenerate: `{command}`.\n",
             f"torchvision `resnet18` (7×7 stride-2 stem, 1 input channel) trained on Fashion-MNIST upsampled to the "
             f"size it is timed at ({first['input_size']} px, timed at {first['deploy_input_size']} px); one dense "
             f"baseline, compressed by each pipeline with {max(r['finetune_epochs'] for r in rows):g} epoch(s) of "
             f"recovery fine-tuning per seed (int8 alone: {int8_finetune}; BN recalibration: "
             f"{bn_text}). Accuracy on the "
             f"{first['samples']:,} test images at that size (int8 pipelines: the int8 ONNX model); latency batch 1, "
             f"ONNX Runtime, each run timing its dense baseline and its result together in {first['processes']} fresh "
             f"processes (`--processes`): medians of per-process medians, speed-ups the median of per-process ratios. "
             f"Machine: {'; '.join(sorted({r['machine'] for r in rows}))}. "
             f"Runs at commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}"
             f"{' (tree dirty)' if dirty else ''}; "
             f"{'some timings ran under load' if any(r['under_load'] for r in rows) else 'no timing ran under load'}"
             ".\n",
             f"Δ top-1: mean change against dense over the seeds with its 95 % interval and test (t over the seeds "
             f"plus both models' binomial test-set error; verdict at p < {ALPHA:g}). "
             "int8 alone: the dense model quantized (the `int8` row), so ×(pruned+int8) ÷ ×(int8 alone) is what "
             "pruning adds.\n",
             "| pipeline | seeds | top-1 | Δ top-1 vs dense | verdict | MACs (G) | MACs ÷ | ORT fp32 ms "
             "| ×dense fp32 | int8 ms | ×dense int8 | int8 alone × |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines.append(f"| dense | - | {100 * first['dense_accuracy']:.2f} % | - | - | {first['dense_macs'] / 1e9:.3f} | ×1 "
                 f"| {statistics.median(r['dense_ort_ms'] for r in rows):.2f} | ×1 | - | - | - |")
    for s in summary:
        fp32, int8 = s["speedup"].get("onnxruntime"), s["speedup"].get("onnxruntime-int8")
        int8_ms = s["ms"].get("onnxruntime-int8")
        spread = f" ± {100 * s['accuracy_sd']:.2f}" if s["accuracy_sd"] is not None else ""
        interval = f" ± {s['half_width']:.2f}" if s["half_width"] is not None else ""
        p = "" if s["p"] is None else ", p < 0.001" if s["p"] < 0.001 else f", p = {s['p']:.3f}"
        test = re.sub(r"t \(\d{4,} dof, Welch–Satterthwaite\)", "z (binomial term dominates)", s["test"])
        lines.append(f"| {s['pipeline']} | {len(s['seeds'])} | {100 * s['accuracy']:.2f}{spread} % | "
                     f"{s['delta_points']:+.2f}{interval} ({test}{p}) | {s['verdict']} | {s['macs'] / 1e9:.3f} | "
                     f"×{s['mac_reduction']:.2f} | {s['ms'].get('onnxruntime', float('nan')):.2f} | "
                     f"{f'×{fp32:.2f}' if fp32 else '-'} | "
                     f"{f'{int8_ms:.2f}' if int8_ms else '-'} | "
                     f"{f'×{int8:.2f}' if int8 else '-'} | {f'×{alone:.2f}' if alone and int8 else '-'} |")
    lines += ["", "Per run (each seed): speed-ups over its own dense baseline, fp32 / int8 ONNX Runtime.\n",
              "| pipeline | seed | top-1 | ×fp32 | ×int8 | spread of process medians (dense, fp32, int8) |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        spreads = ", ".join(f"{100 * v:.1f} %" if v is not None else "-" for v in r["process_spread"].values())
        fp32, int8 = (r["speedup"].get(b) for b in ("onnxruntime", "onnxruntime-int8"))
        lines.append(f"| {r['pipeline']} | {r['seed']} | {100 * r['accuracy']:.2f} % | "
                     f"{f'×{fp32:.2f}' if fp32 else '-'} | {f'×{int8:.2f}' if int8 else '-'} | {spreads} |")
    lines += ["", "Commands: every run's exact `compressor run` command is in `results.json` (`rows[].command`)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, help="directory of `compressor run -o` reports")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--command", default="scripts/resnet18-at-size.sh",
                        help="the command that regenerates the report (written into it)")
    args = parser.parse_args()
    rows = [row(run) for run in load_runs(args.runs)]
    summary = summarize(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic({"rows": rows, "summary": summary,
                       "environment": json.loads(next(args.runs.glob("*.json")).read_text())["environment"]},
                      args.out / "results.json")
    text = render(rows, summary, args.command)
    write_atomic(args.out / "README.md", lambda tmp: tmp.write_text(text))
    print(f"wrote {args.out / 'README.md'}")


if __name__ == "__main__":
    main()
