"""Time compressed ResNet18 / Fashion-MNIST models at the deployment resolution (224 px): reports/deploy-224px/.

Two parts, each model's accuracy taken at its training size (28 px) from the run report beside its checkpoint:

1. The recovery work's models (`runs/recovery-fashion-mnist/{plain,distilled}/runs/*.pt`, made by
   scripts/recovery-fashion-mnist.sh; not in git) and their dense baseline, timed at 224 px, batch 1 and 8, torch and
   ONNX Runtime fp32 and int8 (int8 where the run's pipeline ends in int8, plus the dense baseline quantized with
   calibration chosen by held-out accuracy), all in interleaved rounds (compressor.measure.grid).
2. `channels` with and without `round_to` on the same baseline, one-shot (latency only: the point is the shape).

    .venv/bin/python scripts/deploy_224px.py                      # ~15 min alone on 2 cores (scripts/deploy-224px.sh
                                                                  # runs it after the headline run)
    .venv/bin/python scripts/deploy_224px.py --no-run             # README and plot from results.json

Writes OUT/results.json, OUT/README.md, OUT/speedup-vs-macs.png and the fragments the docs include
(scripts/deploy_224px_fragments.py; they also read OUT/runs/channels-r16+int8-0.5-ft2-distill.json, the ≥ 8× run).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RUNS = REPO / "runs" / "recovery-fashion-mnist"


def _reports(variants: list[str]) -> list[tuple[str, Path, dict[str, Any]]]:
    """(name, checkpoint, run report) of every recovery model of `variants`, in that order."""
    found = []
    for variant in variants:
        for report in sorted((RUNS / variant / "runs").glob("*.json")):
            data = json.loads(report.read_text())
            amounts = [p["amount"] for p in data["params"].values() if "amount" in p]
            amount = amounts[-1] if amounts else None
            name = f"{variant}/{data['strategy']}" + (f"-{amount:g}" if amount is not None else "")
            found.append((name, report.with_suffix(".pt"), data))
    return found


def _accuracy_int8(model: Any, dataset: Any, size: int) -> tuple[dict[str, Any], Any]:
    """Test accuracy of `model` quantized at its training size, calibration chosen on the calib split as
    `compressor run` chooses it (int8 calibration=auto), and the resolved plan."""
    from compressor.api import int8_plan, resolve_int8_plan
    from compressor.measure.accuracy import evaluate, onnx_forward
    from compressor.measure.export import export_onnx, quantize_onnx_int8
    from compressor.measure.latency import onnxruntime_session

    deploy = {"calib_samples": 256, "per_channel": True, "calibration": "auto", "judge_samples": 500}
    plan, choice = resolve_int8_plan(int8_plan(deploy, dataset.train, 0), deploy, model, 1, size, dataset.calib)
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = export_onnx(model, Path(scratch) / "m.onnx", 1, size)
        int8 = quantize_onnx_int8(fp32, Path(scratch) / "q.onnx", plan.calibration(size), method=plan.method)
        accuracy = evaluate(onnx_forward(onnxruntime_session(int8, 2)), dataset.test, size)["accuracy"]
    return {"accuracy": accuracy, "calibration": choice}, plan


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load, build and time every model; the results as one JSON-able dict."""
    import torch

    from compressor._util.environment import environment
    from compressor.api import int8_plan
    from compressor.data import load_dataset
    from compressor.measure import MeasureConfig, TimingPlan
    from compressor.measure.accuracy import evaluate, torch_forward
    from compressor.measure.grid import LatencyGrid, grid_speedups, measure_grid
    from compressor.models.checkpoint import load_checkpoint
    from compressor.strategies.registry import StrategyContext, build_strategy

    torch.set_num_threads(args.threads)
    dataset = load_dataset("fashion-mnist")
    baseline = load_checkpoint(args.baseline)
    size = baseline.spec.input_size
    dense = baseline.model.eval()
    dense_acc = evaluate(torch_forward(dense), dataset.test, size)["accuracy"]
    dense_int8, dense_plan = _accuracy_int8(dense, dataset, size)
    models = {"dense": dense}
    int8 = {"dense": dense_plan}  # the dense model's int8 rows are the int8-vs-fp32 comparison
    rows: dict[str, dict[str, Any]] = {"dense": {"accuracy": dense_acc, "pipeline": "none", "int8": dense_int8}}
    timed_shapes = set()
    for name, checkpoint, report in _reports(["plain", "distilled"]):
        shape = name.split("/", 1)[1]
        rows[name] = {"accuracy": report["compressed"]["accuracy"], "pipeline": report["strategy"],
                      "checkpoint": str(checkpoint.relative_to(REPO))}
        if shape in timed_shapes:  # distilled twin of a plain run: same architecture, same latency
            continue
        timed_shapes.add(shape)
        model = load_checkpoint(checkpoint).model.eval()
        models[name] = model
        if report["strategy"].endswith("int8"):
            deploy = {"calib_samples": 256, "per_channel": True, "calibration": "minmax"}
            chosen = report["compressed"].get("int8_calibration", {}).get("chosen", "minmax")
            int8[name] = int8_plan({**deploy, "calibration": chosen}, dataset.train, 0)
    context = StrategyContext.for_dataset(dataset, input_size=size, seed=0)
    for label, params in (("channels-0.5-global", {"amount": 0.5, "scope": "global"}),
                          ("channels-0.7", {"amount": 0.7})):
        for round_to in (1, 8, 16):
            model = copy.deepcopy(dense)
            output = build_strategy("channels", {**params, "round_to": round_to}).apply(model, context)
            name = f"round/{label}-r{round_to}"
            models[name] = output.model.eval()
            rows[name] = {"pipeline": "channels (one-shot, latency only)", "round_to": round_to,
                          "channel_ratio_removed": output.record["channel_ratio_removed"]}
    plan = TimingPlan(warmup_runs=2, warmup_seconds=0.0, min_runs=args.min_runs, min_seconds=args.min_seconds)
    config = MeasureConfig(backends=("torch", "onnxruntime"), plan=plan, rounds=2)
    grid = LatencyGrid(sizes=(args.size,), batch_sizes=tuple(args.batches), thread_counts=(args.threads,))
    with tempfile.TemporaryDirectory(prefix="deploy-224px-") as scratch:
        timed = measure_grid(models, 1, grid, config, Path(scratch), int8)
    for name in models:
        rows[name]["grid"] = timed[name]
        rows[name]["speedups"] = grid_speedups(timed["dense"], timed[name])
    facts = environment()  # with the CPU's ISA flags and ONNX Runtime's session options
    return {"baseline": str(Path(args.baseline)), "trained_size": size, "deploy_size": args.size,
            "batches": args.batches, "threads": args.threads, "plan": dataclasses.asdict(plan), "rounds": 2,
            "models": rows, "environment": facts, "command": " ".join([".venv/bin/python", *sys.argv])}


def _speedup(row: dict[str, Any], backend: str, batch: int) -> dict[str, Any] | None:
    return next((s for s in row.get("speedups", []) if s["backend"] == backend and s["batch_size"] == batch), None)


def _ms(row: dict[str, Any], backend: str, batch: int) -> float | None:
    return next((r["median_ms"] for r in row.get("grid", {}).get("rows", [])
                 if r["backend"] == backend and r["batch_size"] == batch and "median_ms" in r), None)


def targets(results: dict[str, Any]) -> list[str]:
    """The three targets of issue 19, computed from the rows."""
    models, dense_acc = results["models"], results["models"]["dense"]["accuracy"]
    lines = []

    def timing(name: str) -> dict[str, Any]:  # a distilled run is timed through its plain twin
        return models[name] if models[name].get("grid") else models.get("plain/" + name.split("/", 1)[-1], {})

    def fastest(name: str) -> float:
        backends = ("onnxruntime", "onnxruntime-int8") if models[name]["pipeline"].endswith("int8") else \
            ("onnxruntime",)
        return max((_speedup(timing(name), b, 1) or {}).get("speedup", 0) for b in backends)

    close = [n for n, r in models.items() if r.get("accuracy") is not None and n != "dense"
             and dense_acc - r["accuracy"] <= 0.01 and timing(n)]
    best_name = max(close, key=fastest)
    best, speed = models[best_name], fastest(best_name)
    best = (best_name, best)
    for path in sorted(Path(results.get("out", ".")).glob("runs/*.json")):
        report = json.loads(path.read_text())
        summary = (report.get("deployment") or {}).get("summary", {})
        run_speed = max(summary.values(), default=0)
        if report["compressed"]["accuracy"] >= dense_acc - 0.01 and run_speed > speed:
            best, speed = (f"runs/{path.name}", {"accuracy": report["compressed"]["accuracy"]}), run_speed
    lines.append(f"- within 1 point of dense and ≥ 8× faster than dense fp32 ONNX Runtime at {results['deploy_size']} "
                 f"px, batch 1: **{'met' if speed >= 8 else 'not met'}** — fastest such model `{best[0]}` "
                 f"({100 * best[1]['accuracy']:.2f} % vs dense {100 * dense_acc:.2f} %) at ×{speed:.2f}")
    int8 = models["dense"]["int8"]
    s = (_speedup(models["dense"], "onnxruntime-int8", 1) or {}).get("speedup", 0)
    drop = 100 * (dense_acc - int8["accuracy"])
    met = s >= 2.5 and drop <= 0.5
    lines.append(f"- int8 ≥ 2.5× over fp32 under ONNX Runtime, within 0.5 points: **{'met' if met else 'not met'}** — "
                 f"dense int8 ×{s:.2f} at batch 1 ({100 * int8['accuracy']:.2f} % vs {100 * dense_acc:.2f} %, "
                 f"{drop:+.2f} points lost; calibration {int8['calibration']['chosen']})")
    for name, row in models.items():
        if not name.startswith("plain/") or not any(k in row["pipeline"] for k in ("channels", "blocks")):
            continue
        sp = _speedup(row, "onnxruntime", 1)
        if sp and sp["mac_reduction"] and sp["mac_reduction"] > 1.05:
            ratio = sp["speedup"] / sp["mac_reduction"]
            lines.append(f"- structured `{name}`: speed-up ×{sp['speedup']:.2f} for ×{sp['mac_reduction']:.2f} fewer "
                         f"MACs = {ratio:.2f} of the MAC reduction (target ≥ 0.55): "
                         f"**{'met' if ratio >= 0.55 else 'not met'}**")
    return lines


def readme(results: dict[str, Any]) -> str:
    """The report: setup, per-model table, round_to table, targets, environment, regenerate."""
    env, size, batches = results["environment"], results["deploy_size"], results["batches"]
    head = ["model", "pipeline", f"top-1 at {results['trained_size']} px", "MACs (G)"]
    for b in batches:
        head += [f"torch b{b} ms", f"ORT b{b} ms", f"int8 b{b} ms", f"ORT ×dense b{b}", f"int8 ×dense b{b}"]
    lines = [f"# Compressed ResNet18 / Fashion-MNIST at the deployment resolution ({size} px)\n",
             f"Baseline `{results['baseline']}` (resnet18-s1, trained at {results['trained_size']} px; accuracy is "
             f"always measured at the training size, latency and MACs at {size} px). Models: the recovery work's "
             "`plain` runs (timed) and `distilled` runs (same architectures, so only their accuracy is listed), "
             "the dense baseline quantized to int8, and one-shot `channels` with `round_to` 1/8/16. Every model is "
             f"timed in the same interleaved rounds ({results['rounds']} rounds; at least {results['plan']['min_runs']}"
             f" runs and {results['plan']['min_seconds']} s per cell) with {results['threads']} threads, "
             f"ONNX Runtime with all graph optimizations, sequential execution; int8 = static QDQ, uint8 activations, "
             "per-channel int8 weights (int8 columns: models whose pipeline ends in int8, and the dense model "
             "quantized). "
             "Medians in ms; ×dense = dense fp32 ONNX Runtime median ÷ this model's median. Distilled runs whose "
             "plain twin is timed have the same architecture and are listed for accuracy only (\"as plain\").\n",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in results["models"].items():
        if name.startswith("round/"):
            continue
        grid = row.get("grid")
        macs = f"{grid['macs'][str(size)] / 1e9:.3f}" if grid else "as plain"
        acc = f"{100 * row['accuracy']:.2f} %" if row.get("accuracy") is not None else "-"
        cells = [name, row["pipeline"], acc, macs]
        for b in batches:
            ort = _speedup(row, "onnxruntime", b)
            q = _speedup(row, "onnxruntime-int8", b)
            cells += [_fmt(_ms(row, "torch", b)), _fmt(_ms(row, "onnxruntime", b)),
                      _fmt(_ms(row, "onnxruntime-int8", b)), f"×{ort['speedup']:.2f}" if ort else "-",
                      f"×{q['speedup']:.2f}" if q else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _run_reports(results, size)
    lines += ["", "![speed-up against MAC reduction](speedup-vs-macs.png)\n",
              f"## `channels` with `round_to` at {size} px (one-shot on the baseline, latency only)\n",
              "| model | channels removed | MACs (G) | ORT b1 ms | ORT ×dense b1 | torch b1 ms |",
              "|---|---|---|---|---|---|"]
    for name, row in results["models"].items():
        if name.startswith("round/"):
            sp = _speedup(row, "onnxruntime", 1)
            lines.append(f"| {name[6:]} | {100 * row['channel_ratio_removed']:.1f} % | "
                         f"{row['grid']['macs'][str(size)] / 1e9:.3f} | {_fmt(_ms(row, 'onnxruntime', 1))} | "
                         f"×{sp['speedup']:.2f} | {_fmt(_ms(row, 'torch', 1))} |")
    kernels = results["models"]["dense"]["grid"]["int8_kernels"][str(size)]
    lines += ["", "## int8 kernels\n",
              f"ONNX Runtime's optimized graph of the dense int8 model: integer kernels {kernels['int8_compute_ops']}, "
              f"float compute kernels {kernels['float_compute_ops'] or 'none'}; profiled share of time in integer "
              f"kernels {100 * kernels['profile_int8_share']:.1f} %; session options {kernels['session_options']}. "
              f"Dense int8 test top-1 at {results['trained_size']} px: "
              f"{100 * results['models']['dense']['int8']['accuracy']:.2f} % "
              f"(calibration {results['models']['dense']['int8']['calibration']}). Per-op profile in results.json "
              "(`models.dense.grid.int8_kernels`).\n",
              "## Targets\n", *targets(results), "",
              "## Environment and regenerate\n",
              f"{env['cpu']}, {env['cpu_count']} cores, ISA {', '.join(results['environment']['isa'])}; torch "
              f"{env['packages']['torch']}, onnxruntime {env['packages']['onnxruntime']}; git {env['git_commit']}. "
              "Time it alone: other work on the machine changes these numbers.\n", f"```\n{results['command']}\n```\n"]
    return "\n".join(lines)


def _run_reports(results: dict[str, Any], size: int) -> list[str]:
    """Rows for `compressor run --deploy-size` reports kept in OUT/runs/ (each times its own baseline beside it)."""
    rows = []
    for path in sorted(Path(results["out"]).glob("runs/*.json")) if "out" in results else []:
        report = json.loads(path.read_text())
        deploy, comp = report.get("deployment") or {}, report["compressed"]
        cells = {(r["batch_size"], r["threads"], r["backend"]): r for r in deploy.get("speedups", [])
                 if r["input_size"] == size}
        most = max((t for _, t, _ in cells), default=None)
        for batch in results["batches"]:
            for backend in ("onnxruntime", "onnxruntime-int8"):
                row = cells.get((batch, most, backend))
                if row:
                    rows.append(f"| `runs/{path.name}` | {100 * comp['accuracy']:.2f} % | b{batch}, {backend} | "
                                f"{row['baseline_ms']:.2f} | {row['compressed_ms']:.2f} | ×{row['speedup']:.2f} | "
                                f"×{row['mac_reduction']:.2f} |")
    if not rows:
        return []
    return ["", f"## `compressor run --deploy-size {size}` reports in runs/\n",
            "Each times its own baseline and result interleaved (its command is in the JSON); accuracy at the "
            f"training size (int8 model's where the pipeline ends in int8), latency at {size} px, all cores.\n",
            "| report | top-1 | cell | baseline ms | compressed ms | speed-up | MACs ÷ |",
            "|---|---|---|---|---|---|---|",
            *rows]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def plot(results: dict[str, Any], path: Path) -> None:
    """Measured ONNX Runtime speed-up (batch 1) against MAC reduction, with the y = x and y = 0.55 x lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    points = []
    for name, row in results["models"].items():
        for backend, marker in (("onnxruntime", "o"), ("onnxruntime-int8", "^")):
            sp = _speedup(row, backend, 1)
            if sp and sp["mac_reduction"] and (backend == "onnxruntime" or row["pipeline"].endswith("int8")
                                               or name == "dense"):
                points.append((sp["mac_reduction"], sp["speedup"], name, marker))
    top = max(max(p[0] for p in points), max(p[1] for p in points)) * 1.3
    ax.plot([1, top], [1, top], "k--", lw=1, label="speed-up = MAC reduction")
    ax.plot([1, top], [0.55, 0.55 * top], "k:", lw=1, label="0.55 × MAC reduction (target)")
    labelled: list[tuple[float, float]] = []
    for x, y, name, marker in sorted(points, key=lambda p: (p[2] != "dense", p[2])):
        ax.scatter(x, y, marker=marker, s=40, color="tab:red" if marker == "^" else
                   "tab:green" if name.startswith("round/") else "tab:blue")
        if any(abs(x / lx - 1) < 0.15 and abs(y / ly - 1) < 0.12 for lx, ly in labelled):
            continue  # a label already sits here: overlapping text helps nobody (every value is in the table)
        labelled.append((x, y))
        text = name.split("/", 1)[-1] + (" int8" if marker == "^" and name == "dense" else "")
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.scatter([], [], marker="o", color="tab:blue", label="fp32 ONNX Runtime")
    ax.scatter([], [], marker="o", color="tab:green", label="channels round_to (one-shot)")
    ax.scatter([], [], marker="^", color="tab:red", label="int8 ONNX Runtime")
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel(f"MAC reduction against dense at {results['deploy_size']} px (×)")
    ax.set_ylabel("measured speed-up against dense fp32, batch 1 (×)")
    ax.set_title(f"ResNet18 / Fashion-MNIST models at {results['deploy_size']} px, {results['threads']} threads")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=str(RUNS.relative_to(REPO) / "baseline-s0.pt"))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batches", type=lambda t: [int(b) for b in t.split(",")], default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-runs", type=int, default=6)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "deploy-224px")
    parser.add_argument("--no-run", action="store_true")
    args = parser.parse_args()
    from compressor._util.fileio import write_atomic, write_json_atomic

    args.out.mkdir(parents=True, exist_ok=True)
    if args.no_run:
        results = json.loads((args.out / "results.json").read_text())
        results["out"] = str(args.out)
    else:
        results = run(args)
        write_json_atomic(results, args.out / "results.json")
        results["out"] = str(args.out)
    plot(results, args.out / "speedup-vs-macs.png")
    write_atomic(args.out / "README.md", lambda tmp: tmp.write_text(readme(results)))
    print(f"wrote {args.out / 'README.md'}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from deploy_224px_fragments import write_fragments

    write_fragments(args.out)  # the docs' figures, from what was just written


if __name__ == "__main__":
    main()
