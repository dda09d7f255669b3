"""Global one-shot pruning without fine-tuning: l1 vs obd vs woodfisher vs fishleg at several sparsities.

Regenerates reports/second-order-fashion-mnist/ (README.md table, results.json, accuracy.png):

    .venv/bin/python scripts/second_order_table.py            # ResNet18 on Fashion-MNIST, 50/70/80/90 %

Every cell (method × sparsity) runs in its own subprocess, so its peak memory is its own, and writes one JSON file
under OUT/cells/; finished cells are skipped, so an interrupted run resumes. The baseline is the cached one that
`compressor run --data fashion-mnist` trains (about 17 minutes on 2 cores when it is not cached yet).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("l1", "l1+bn", "obd", "woodfisher", "fishleg")
AMOUNTS = (0.5, 0.7, 0.8, 0.9)


def run_cell(method: str, amount: float, args: argparse.Namespace) -> dict:
    """Prune a copy of the baseline with `method` and measure test accuracy and calibration loss."""
    import torch

    from compressor.baseline import BaselineRequest, get_baseline
    from compressor.data import load_dataset
    from compressor.measure.accuracy import evaluate, torch_forward
    from compressor.progress import RichProgress, silent_progress
    from compressor.registry import StrategyContext, build_strategy
    from compressor.strategies.sensitivity import calib_scores
    from compressor.train import recalibrate_batchnorm

    torch.manual_seed(args.seed)
    dataset = load_dataset(args.data)
    baseline, source = get_baseline(BaselineRequest(arch=args.arch, seed=args.seed), dataset)
    model = copy.deepcopy(baseline.model).eval()
    size = baseline.spec.input_size
    context = StrategyContext.for_dataset(dataset, input_size=size, seed=args.seed, progress=silent_progress if args.quiet else RichProgress())
    calib = list(dataset.calib.batches(size, 250))[:4]
    before = calib_scores(model, context, calib)
    start = time.perf_counter()
    name = method.split("+")[0]
    record = build_strategy(name, {"amount": amount}).apply(model, context).record
    if method == "l1+bn":
        record["bn_images"] = recalibrate_batchnorm(model, dataset.train, size, seed=args.seed)
    seconds = time.perf_counter() - start
    after = calib_scores(model, context, calib)
    test = evaluate(torch_forward(model), dataset.test, size)
    return {"method": method, "amount": amount, "sparsity": record["sparsity"], "accuracy": test["accuracy"],
            "f1_macro": test["f1_macro"], "calib_loss_before": before[1], "calib_loss_after": after[1],
            "predicted_loss_increase": record.get("predicted_loss_increase"),
            "measured_loss_increase": record.get("measured_loss_increase"), "seconds": round(seconds, 1),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "steps": record.get("steps"), "aux_fits": record.get("aux_fits"), "baseline": str(source),
            "baseline_accuracy": evaluate(torch_forward(baseline.model), dataset.test, size)["accuracy"]}


def _plot(cells: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for index, method in enumerate(METHODS):
        color = f"C{index}"
        rows = sorted((c for c in cells if c["method"] == method), key=lambda c: c["amount"])
        if rows:
            left.plot([100 * c["amount"] for c in rows], [100 * c["accuracy"] for c in rows], marker="o",
                      label=method, color=color)
        pairs = [(c["predicted_loss_increase"], c["measured_loss_increase"]) for c in rows
                 if c.get("predicted_loss_increase") and c.get("measured_loss_increase")]
        if pairs:
            right.scatter(*zip(*pairs), label=method, color=color)
    base = cells[0]["baseline_accuracy"]
    left.axhline(100 * base, color="grey", linestyle="--", label=f"dense {100 * base:.2f} %")
    left.set(xlabel="global sparsity (%)", ylabel="test top-1 (%)", title="one-shot, no fine-tuning")
    left.legend()
    right.set(xscale="log", yscale="log", xlabel="predicted loss increase (Σ OBS saliency)",
              ylabel="measured calibration loss increase (before BN recalibration)", title="predicted vs measured")
    lims = [min(right.get_xlim()[0], right.get_ylim()[0]), max(right.get_xlim()[1], right.get_ylim()[1])]
    right.plot(lims, lims, color="grey", linestyle=":")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _readme(cells: list[dict], args: argparse.Namespace) -> str:
    from compressor.environment import environment

    by = {(c["method"], c["amount"]): c for c in cells}
    amounts = sorted({c["amount"] for c in cells})
    lines = [f"# Second-order vs magnitude pruning: {args.arch} on {args.data}, global one-shot, no fine-tuning\n",
             f"Dense test accuracy {100 * cells[0]['baseline_accuracy']:.2f} %. First conv and classifier not "
             "pruned. `l1+bn` is magnitude pruning followed by the same BatchNorm recalibration the second-order "
             "methods do; obd/woodfisher/fishleg run with their default parameters (`compressor list`).\n",
             "## Test top-1 (%)\n",
             "| method | " + " | ".join(f"{100 * a:.0f} %" for a in amounts) + " |",
             "|---|" + "---|" * len(amounts)]
    for method in METHODS:
        cells_m = [by.get((method, a)) for a in amounts]
        lines.append(f"| {method} | " + " | ".join(f"{100 * c['accuracy']:.2f}" if c else "-" for c in cells_m)
                     + " |")
    lines += ["", "## Predicted vs measured calibration loss increase, time, peak memory\n",
              "| method | sparsity | predicted ΔL | measured ΔL (before BN) | seconds | peak RSS GiB |",
              "|---|---|---|---|---|---|"]
    for method in METHODS:
        for a in amounts:
            c = by.get((method, a))
            if c:
                pred = f"{c['predicted_loss_increase']:.4f}" if c["predicted_loss_increase"] is not None else "-"
                meas = f"{c['measured_loss_increase']:.4f}" if c["measured_loss_increase"] is not None else "-"
                lines.append(f"| {method} | {100 * a:.0f} % | {pred} | {meas} | {c['seconds']:.0f} | "
                             f"{c['peak_rss_gib']:.2f} |")
    env = environment()
    lines += ["", "![accuracy and loss](accuracy.png)\n", "## Regenerate\n",
              f"```\n.venv/bin/python scripts/second_order_table.py --arch {args.arch} --data {args.data} "
              f"--out {args.out}\n```\n",
              f"Environment: {env['cpu']}, {env['cpu_count']} cores, torch {env['packages']['torch']}, "
              f"git {env['git_commit']}.\n"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--amounts", default=",".join(map(str, AMOUNTS)))
    parser.add_argument("--out", type=Path, default=Path("reports/second-order-fashion-mnist"))
    parser.add_argument("--cell", nargs=2, metavar=("METHOD", "AMOUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    cells_dir = args.out / "cells"
    if args.cell:
        from compressor.fileio import write_json_atomic

        method, amount = args.cell[0], float(args.cell[1])
        write_json_atomic(run_cell(method, amount, args), cells_dir / f"{method}-{amount}.json")
        return
    for amount in (float(a) for a in args.amounts.split(",")):
        for method in args.methods.split(","):
            if (cells_dir / f"{method}-{amount}.json").exists():
                continue
            print(f"== {method} at {amount}", flush=True)
            subprocess.run([sys.executable, __file__, "--arch", args.arch, "--data", args.data, "--seed",
                            str(args.seed), "--out", str(args.out), "--cell", method, str(amount),
                            *(["--quiet"] if args.quiet else [])], check=True)
    cells = [json.loads(p.read_text()) for p in sorted(cells_dir.glob("*.json"))]
    from compressor.fileio import write_atomic, write_json_atomic

    write_json_atomic({"cells": cells}, args.out / "results.json")
    write_atomic(args.out / "accuracy.png", lambda tmp: _plot(cells, tmp))
    write_atomic(args.out / "README.md", lambda tmp: tmp.write_text(_readme(cells, args)))
    print(f"wrote {args.out / 'README.md'}")


if __name__ == "__main__":
    main()
