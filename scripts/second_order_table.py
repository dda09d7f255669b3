"""Seeded one-shot pruning comparison: methods × sparsities × calibration seeds, without and with BN recalibration.

Regenerates reports/second-order-fashion-mnist/ (README.md, results.json, accuracy.png, difference.png, cells/):

    .venv/bin/python scripts/second_order_table.py            # ResNet18 on Fashion-MNIST, 90/95/98 %, seeds 0,1,2

--methods is a comma list of `label` (the strategy of that name with its defaults) or
`label=strategy:key=value;key=value` (quote it: `;` is a shell separator). A comma piece that does not start with a
letter continues the previous value, so `ls=layer-sensitive:ratios=0.5,0.9,0.98` is one method. The seed is the
strategy's (StrategyContext.seed: its gradient and Fisher batches) and BN recalibration's; the model is one.

Every cell (label × amount × seed) runs in its own subprocess, so its peak memory is its own, and writes
OUT/cells/{label}-{amount}-s{seed}.json; finished cells are skipped, so an interrupted run resumes. The dense test
accuracy is computed once, in OUT/dense.json; the facts of the machine that runs the cells go to
OUT/environment.json, which --no-run reuses (a report aggregated elsewhere names where its cells ran); OUT/notes.md,
if present, goes into the README as hand-written notes. Aggregation, the noise rule and the tables live in
scripts/second_order_aggregate.py, the two figures in scripts/second_order_plots.py.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import second_order_aggregate as agg  # noqa: E402
import second_order_plots as plots  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_METHODS = "l1,obd,woodfisher,fishleg,layer-sensitive=layer-sensitive:ratios=0.5,0.7,0.9,0.95,0.98"
LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]*")
RECORD_KEYS = ("steps", "predicted_loss_increase", "measured_loss_increase", "aux_fits", "fishleg", "allocation",
               "chosen")


def parse_methods(text: str) -> dict[str, dict[str, Any]]:
    """{label: {"strategy", "params"}} from the --methods syntax (see the module docstring)."""
    entries: list[str] = []
    for piece in text.split(","):
        if entries and piece[:1] and not piece[:1].isalpha():
            entries[-1] += "," + piece
        else:
            entries.append(piece.strip())
    specs: dict[str, dict[str, Any]] = {}
    for entry in entries:
        label, _, rest = entry.partition("=")
        strategy, _, raw = (rest or label).partition(":")
        if not LABEL.fullmatch(label) or not strategy:
            raise ValueError(f"bad method {entry!r}: expected `label` or `label=strategy:key=value;key=value`, the "
                             "label a letter then letters, digits, _ . + -")
        if label in specs:
            raise ValueError(f"method label {label!r} given twice")
        params = {}
        for item in filter(None, raw.split(";")):
            key, eq, value = item.partition("=")
            if not eq or key.strip() in ("amount", "bn_recalibrate"):
                raise ValueError(f"bad parameter {item!r} of {label}: expected key=value; amount comes from --amounts "
                                 "and bn_recalibrate is set by the script")
            params[key.strip()] = value.strip()
        specs[label] = {"strategy": strategy.strip(), "params": params}
    return specs


def strategy_params(spec: dict[str, Any], amount: float) -> dict[str, Any]:
    """The spec's params plus the amount (strategies never recalibrate BatchNorm: each cell measures both modes)."""
    return {**spec["params"], "amount": amount}


def model_args(args: argparse.Namespace) -> dict[str, Any]:
    """What identifies the model every cell prunes."""
    if args.checkpoint:
        path = Path(args.checkpoint).resolve()
        return {"checkpoint": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path), "data": args.data}
    return {"arch": args.arch, "data": args.data or "fashion-mnist", "baseline_seed": args.baseline_seed}


def load_model(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """(checkpoint, where it came from, dataset) for --checkpoint, else the cached baseline."""
    from compressor.data import load_dataset
    from compressor.models.baselines import BaselineRequest, get_baseline
    from compressor.models.checkpoint import load_checkpoint, load_dataset_for

    if args.checkpoint:
        checkpoint = load_checkpoint(args.checkpoint)
        return checkpoint, str(args.checkpoint), load_dataset_for(checkpoint.spec, args.data)
    dataset = load_dataset(args.data or "fashion-mnist")
    checkpoint, path = get_baseline(BaselineRequest(arch=args.arch, seed=args.baseline_seed), dataset,
                                    show_progress=not args.quiet)
    return checkpoint, str(path), dataset


def _setup(args: argparse.Namespace) -> tuple[Any, Any, str, Any]:
    import torch

    from compressor._util.device import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    checkpoint, source, dataset = load_model(args)
    return torch, device, source, (checkpoint, dataset)


def run_dense(args: argparse.Namespace) -> dict[str, Any]:
    """Dense test accuracy and the facts the README's setup paragraph states."""
    from torch import nn

    from compressor.measure.accuracy import evaluate, torch_forward
    from compressor.strategies.selection import prunable_layers

    _, device, source, (checkpoint, dataset) = _setup(args)
    model = checkpoint.model.to(device).eval()
    test = evaluate(torch_forward(model), dataset.test, checkpoint.spec.input_size)
    layers = prunable_layers(model)
    every = [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return {"model_args": model_args(args), "source": source, "arch": checkpoint.spec.arch,
            "dataset": dataset.info.name, "num_classes": dataset.info.num_classes,
            "input_size": checkpoint.spec.input_size, "accuracy": test["accuracy"],
            "accuracy_se": agg.binomial_se(test["accuracy"], test["samples"]), "test_samples": test["samples"],
            "prunable_layers": list(layers), "excluded_layers": [n for n in every if n not in layers],
            "eligible_params": sum(layer.weight.numel() for layer in layers.values())}


def run_cell(label: str, spec: dict[str, Any], amount: float, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Prune a copy of the model; test accuracy without, then with BN recalibration; cost and strategy record."""
    from compressor._util.environment import cpu_name
    from compressor._util.progress import RichProgress, silent_progress
    from compressor.measure.accuracy import evaluate, torch_forward
    from compressor.recovery.batchnorm import recalibrate_batchnorm
    from compressor.strategies.registry import StrategyContext, build_strategy
    from compressor.strategies.sensitivity import calib_scores

    torch, device, source, (checkpoint, dataset) = _setup(args)
    cuda = device.type == "cuda"
    torch.manual_seed(seed)
    model = copy.deepcopy(checkpoint.model).to(device).eval()
    size = checkpoint.spec.input_size
    context = StrategyContext.for_dataset(dataset, input_size=size, seed=seed, device=device,
                                          progress=silent_progress if args.quiet else RichProgress())
    calib = list(itertools.islice(dataset.calib.batches(size, 250), 4))
    params = strategy_params(spec, amount)
    strategy = build_strategy(spec["strategy"], params)
    before = calib_scores(model, context, calib)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    output = strategy.apply(model, context)
    if cuda:
        torch.cuda.synchronize(device)
    strategy_seconds = time.perf_counter() - start
    model, record = output.model, output.record
    no_bn = evaluate(torch_forward(model), dataset.test, size)
    pruned = calib_scores(model, context, calib)
    start = time.perf_counter()
    bn_images = recalibrate_batchnorm(model, dataset.train, size, seed=seed)
    recal_seconds = time.perf_counter() - start
    bn = evaluate(torch_forward(model), dataset.test, size)
    after = calib_scores(model, context, calib)
    n = no_bn["samples"]
    return {"label": label, "strategy": spec["strategy"], "params": spec["params"], "amount": amount, "seed": seed,
            "effective_params": {k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
                                 for k, v in vars(strategy).items() if not k.startswith("_") and k != "nm"},
            "accuracy": {"no": no_bn["accuracy"], "yes": bn["accuracy"]},
            "accuracy_se": {"no": agg.binomial_se(no_bn["accuracy"], n), "yes": agg.binomial_se(bn["accuracy"], n)},
            "test_samples": n, "calib_loss": {"before": before[1], "no": pruned[1], "yes": after[1]},
            "calib_accuracy": {"before": before[0], "no": pruned[0], "yes": after[0]},
            "sparsity": record.get("sparsity"), "strategy_seconds": round(strategy_seconds, 2),
            "recalibration_seconds": round(recal_seconds, 2), "bn_images": bn_images,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "cuda_peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
            "device": str(device), "threads": torch.get_num_threads(), "model_args": model_args(args),
            "host": {"cpu": cpu_name(), "gpu": torch.cuda.get_device_name(device) if cuda else None},
            "source": source, **{key: record[key] for key in RECORD_KEYS if key in record},
            "layer_sparsity": {name: info.get("sparsity") for name, info in record.get("layers", {}).items()}}


def command_line() -> str:
    """This invocation as one could retype it from the repository root (without --no-run: what made the cells)."""
    python = Path(sys.executable)
    python_text = os.path.relpath(python, REPO) if python.is_relative_to(REPO) else str(python)
    script = Path(__file__).resolve().relative_to(REPO)
    env = [f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ]
    return shlex.join([*env, python_text, str(script), *(a for a in sys.argv[1:] if a != "--no-run")])


def environment_facts(args: argparse.Namespace) -> dict[str, Any]:
    """compressor._util.environment (with ISA flags), git dirty flag (outside OUT), threads and the exact command."""
    from compressor._util.environment import environment

    facts = environment()  # its "isa" holds the CPU's VNNI/AVX-512/AMX flags
    out = Path(args.out).resolve()
    exclude = [f":(exclude){out.relative_to(REPO)}"] if out.is_relative_to(REPO) and out != REPO else []
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *exclude],
                            cwd=REPO, capture_output=True, text=True, check=False)
    facts.update({"threads": args.threads, "device": args.device,
                  "git_dirty": bool(status.stdout.strip()) if status.returncode == 0 else None,
                  "command": command_line()})
    return facts


def load_cells(cells_dir: Path, specs: dict[str, Any], amounts: list[float], seeds: list[int],
               model: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The finished cells of this run (and the names of the missing ones); a cell of another model or other
    parameters under the same label stops the run rather than being mixed in."""
    cells, missing = [], []
    for label, amount, seed in itertools.product(specs, amounts, seeds):
        path = cells_dir / f"{agg.cell_name(label, amount, seed)}.json"
        if not path.exists():
            missing.append(path.stem)
            continue
        cell = json.loads(path.read_text())
        if cell.get("model_args") != model or (cell["strategy"], cell["params"]) != \
                (specs[label]["strategy"], specs[label]["params"]):
            sys.exit(f"{path} was run on another model or with other parameters ({cell['strategy']} "
                     f"{cell['params']}); delete it or use another --out/label")
        cells.append(cell)
    return cells, missing


def readme(title: str, dense: dict[str, Any], specs: dict[str, Any], amounts: list[float], seeds: list[int],
           reference: str, results: dict[str, Any], out: Path) -> str:
    """The report: setup, accuracy tables, differences with the noise verdict, cost, targets, regenerate."""
    labels, n, env = list(specs), len(seeds), results["environment"]
    methods = "; ".join(f"`{label}` = {s['strategy']}" + (" (" + ", ".join(f"{k}={v}" for k, v in s["params"].items())
                                                             + ")" if s["params"] else " (defaults)")
                        for label, s in specs.items())
    bn_images = max((c["bn_images"] for c in results["cells"]), default="up to 2560")
    excluded = ", ".join(f"`{name}`" for name in dense["excluded_layers"])
    lines = [f"# {title}\n",
             f"Model: `{dense['source']}` ({dense['arch']}, {dense['dataset']}, {dense['input_size']} px). Dense test "
             f"top-1 {100 * dense['accuracy']:.2f} ± {100 * dense['accuracy_se']:.2f} % (binomial SE on "
             f"{dense['test_samples']} test images). Prunable by default: {len(dense['prunable_layers'])} conv/linear "
             f"layers, {dense['eligible_params']:,} weights (not {excluded}). Global one-shot pruning, no fine-tuning; "
             f"methods: {methods}. No strategy recalibrates BatchNorm itself; "
             "every cell is measured first as pruned (\"without BN recalibration\"), then after the same BatchNorm "
             f"recalibration ({bn_images} training images in shuffled batches of 128, cumulative average). "
             f"Calibration seeds {', '.join(map(str, seeds))}: each is the strategy's seed (StrategyContext.seed: "
             "the training batches second-order strategies draw gradients and Fisher products from; magnitude "
             "pruning ignores it) and the recalibration's batch order; the model is the same for all. Accuracies "
             "are mean ± sample std over seeds (n shown where a seed is missing).\n",
             f"**Noise rule.** {agg.NOISE_RULE}\n"]
    for bn in agg.BN_MODES:
        lines += [f"## Test top-1 (%), {agg.BN_TEXT[bn]}\n",
                  *agg.accuracy_table(results["aggregates"], labels, amounts, bn, n), ""]
    for bn in agg.BN_MODES:
        lines += [f"## Difference to {reference} (points), {agg.BN_TEXT[bn]}\n",
                  f"Each method minus {reference} in the same BN mode, paired by seed: mean ± std of the per-seed "
                  "differences; 95 % ± is the confidence half-width (t on n − 1 dof), p its two-sided p-value; the "
                  "verdict applies the noise rule.\n",
                  *agg.difference_table(results["differences"], labels, amounts, bn, n), ""]
    lines += ["![difference to the reference](difference.png)\n", "![accuracy](accuracy.png)\n",
              "## Time and peak memory\n",
              "Strategy seconds (mean over seeds; BN recalibration not included) and peak resident memory of the "
              "cell's process (max over seeds; on CUDA also the peak allocated GPU memory).\n",
              *agg.cost_table(results["cells"], labels, amounts), "", "## Targets\n"]
    lines += [f"- {t['target']}: **{t['status']}** — {t['detail']}" for t in results["targets"]] + [""]
    chosen = agg.allocation_table(results["cells"], labels, amounts)
    if chosen:
        lines += ["## Allocation chosen by layer-sensitive\n",
                  "Per seed, the candidate with the lowest calibration loss after BatchNorm recalibration (cells' "
                  "`allocation` records hold every candidate's loss, accuracy and per-layer ratios).\n", *chosen, ""]
    probes = {path.name: json.loads(path.read_text()) for path in sorted(out.glob("fishleg-vs-obd*.json"))}
    if probes:
        lines += ["## FishLeg's learned Q against OBD on the same Fisher (one pruning step)\n",
                  "`scripts/fishleg_probe.py` prunes the model once with `obd` and once with `fishleg`, both on "
                  "FishLeg's Fisher (model-sampled labels) and damping, one recomputation, seed 0, so that they "
                  "differ only in the learned Kronecker factors; each file holds the per-layer held-out losses and "
                  "its command.\n", *agg.fishleg_probe_table(probes), ""]
    notes = out / "notes.md"
    if notes.exists():  # hand-written context the cells cannot state (where they ran, what did not finish and why)
        lines += ["## Notes\n", notes.read_text().strip(), ""]
    if results["missing"] or results["failed"]:
        lines += ["## Missing cells\n", ", ".join(results["missing"]) + "."
                  + (f" Failed this run: {', '.join(results['failed'])}." if results["failed"] else ""), ""]
    threads = "/".join(str(t) for t in sorted({c["threads"] for c in results["cells"]})) or env["torch_threads"]
    dirty = {True: " (uncommitted changes)", False: "", None: " (dirty state unknown)"}[env["git_dirty"]]
    lines += ["## Regenerate\n", "From the repository root (finished cells under cells/ are reused):\n",
              f"```\n{env['command']}\n```\n",
              f"Environment: {env['cpu']} ({', '.join(env['isa']) or 'no AVX2/AVX-512/AMX'}), {env['cpu_count']} "
              f"cores, torch threads per cell {threads}, device "
              f"{env['device']}{' (' + env['cuda'] + ')' if env['cuda'] and env['device'] != 'cpu' else ''}, torch "
              f"{env['packages']['torch']}, git {env['git_commit']}{dirty}.\n"]
    return "\n".join(lines)


def rederive(out: Path) -> None:
    """Differences, targets, figures and README again from OUT/results.json's own cells (a changed noise rule needs no
    new measurement; the recorded environment and command stay those of the run)."""
    from compressor._util.fileio import write_atomic, write_json_atomic

    results = json.loads((out / "results.json").read_text())
    cells, specs, amounts, reference = results["cells"], results["methods"], results["amounts"], results["reference"]
    labels = list(specs)
    results.update(noise_rule=agg.NOISE_RULE, differences=agg.differences(cells, labels, reference, amounts),
                   targets=agg.targets(cells, specs, amounts))
    write_json_atomic(results, out / "results.json")
    chance = 100 / results["dense"]["num_classes"]
    plots.plot_differences(results["differences"], labels, amounts, reference, chance, out / "difference.png")
    text = readme(results["title"], results["dense"], specs, amounts, results["seeds"], reference, results, out)
    write_atomic(out / "README.md", lambda tmp: tmp.write_text(text))
    print(f"wrote {out / 'README.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a compressor checkpoint; default: the cached baseline of --arch/--data")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--data", help="dataset (default: the checkpoint's, else fashion-mnist)")
    parser.add_argument("--baseline-seed", type=int, default=0)
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--amounts", default="0.9,0.95,0.98")
    parser.add_argument("--seeds", default="0,1,2", help="calibration seeds (strategy and BN recalibration)")
    parser.add_argument("--reference", default="l1", help="label the differences are taken against")
    parser.add_argument("--out", type=Path, default=Path("reports/second-order-fashion-mnist"))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads in every cell")
    parser.add_argument("--jobs", type=int, default=1, help="cells run at a time (give each --threads cores)")
    parser.add_argument("--no-run", action="store_true", help="run no cell: report from the cells already there")
    parser.add_argument("--rederive", action="store_true",
                        help="run nothing: differences, targets, figures and README again from OUT/results.json")
    parser.add_argument("--title")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--cell", nargs=3, metavar=("LABEL", "AMOUNT", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--dense", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        specs = parse_methods(args.methods)
        amounts = [float(a) for a in args.amounts.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    if args.rederive:
        rederive(args.out)
        return
    from compressor._util.fileio import write_atomic, write_json_atomic
    from compressor.errors import CompressorError
    from compressor.strategies.registry import build_strategy

    cells_dir, dense_path = args.out / "cells", args.out / "dense.json"
    if args.dense:
        write_json_atomic(run_dense(args), dense_path)
        return
    if args.cell:
        label, amount, seed = args.cell[0], float(args.cell[1]), int(args.cell[2])
        write_json_atomic(run_cell(label, specs[label], amount, seed, args),
                          cells_dir / f"{agg.cell_name(label, amount, seed)}.json")
        return
    if args.reference not in specs:
        parser.error(f"--reference {args.reference} is not one of the methods ({', '.join(specs)})")
    try:
        for (label, spec), amount in itertools.product(specs.items(), amounts):  # noqa: B007 - named in the error
            build_strategy(spec["strategy"], strategy_params(spec, amount))
    except CompressorError as exc:
        parser.error(f"{label} at {amount}: {exc}")
    env_path = args.out / "environment.json"
    if args.no_run and env_path.exists():  # the facts of the machine that ran the cells, not of this one
        env = {**json.loads(env_path.read_text()), "command": command_line()}
    else:
        env = environment_facts(args)  # before any cell is written, so the dirty flag sees only the code
        write_json_atomic(env, env_path)
    common = [sys.executable, __file__, "--methods", args.methods, "--out", str(args.out), "--device", args.device,
              *(["--checkpoint", args.checkpoint] if args.checkpoint else ["--arch", args.arch]),
              *(["--data", args.data] if args.data else []), "--baseline-seed", str(args.baseline_seed),
              *(["--threads", str(args.threads)] if args.threads else []), *(["--quiet"] if args.quiet else [])]
    model = model_args(args)
    dense = json.loads(dense_path.read_text()) if dense_path.exists() else None
    if dense is None or dense["model_args"] != model:
        if cells_dir.is_dir() and any(cells_dir.glob("*.json")) and dense is not None:
            sys.exit(f"{args.out} holds cells of another model ({dense['model_args']}); use another --out")
        print("== dense model", flush=True)
        subprocess.run([*common, "--dense"], check=True)
        dense = json.loads(dense_path.read_text())
    todo = [(label, amount, seed) for seed, amount, label in itertools.product(seeds, amounts, specs)
            if not args.no_run and not (cells_dir / f"{agg.cell_name(label, amount, seed)}.json").exists()]

    def run(cell: tuple[str, float, int]) -> str | None:
        label, amount, seed = cell
        print(f"== {agg.cell_name(label, amount, seed)}", flush=True)
        code = subprocess.run([*common, "--cell", label, repr(amount), str(seed)], check=False).returncode
        return agg.cell_name(label, amount, seed) if code else None

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        failed = [name for name in pool.map(run, todo) if name]
    cells, missing = load_cells(cells_dir, specs, amounts, seeds, model)
    stray = len(list(cells_dir.glob("*.json"))) - len(cells)
    if stray:
        print(f"{stray} other cell files in {cells_dir} are not part of this run and are left out")
    labels = list(specs)
    results = {"title": args.title or f"One-shot pruning over calibration seeds: {dense['arch']} on "
                                      f"{dense['dataset']}, without and with BN recalibration, no fine-tuning",
               "environment": env, "dense": dense, "methods": specs, "amounts": amounts, "seeds": seeds,
               "reference": args.reference, "noise_rule": agg.NOISE_RULE,
               "units": "cells: fractions; aggregates: percent; differences: percentage points",
               "aggregates": agg.aggregate(cells, labels, amounts),
               "differences": agg.differences(cells, labels, args.reference, amounts),
               "targets": agg.targets(cells, specs, amounts), "missing": missing, "failed": failed, "cells": cells}
    write_json_atomic(results, args.out / "results.json")
    chance = 100 / dense["num_classes"]
    plots.plot_differences(results["differences"], labels, amounts, args.reference, chance, args.out / "difference.png")
    plots.plot_accuracy(results["aggregates"], labels, amounts, 100 * dense["accuracy"], chance,
                        args.out / "accuracy.png")
    text = readme(results["title"], dense, specs, amounts, seeds, args.reference, results, args.out)
    write_atomic(args.out / "README.md", lambda tmp: tmp.write_text(text))
    print(f"wrote {args.out / 'README.md'}" + (f"; failed cells: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
