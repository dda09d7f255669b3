"""run(): load or train the baseline -> apply strategies in order -> measure both -> save checkpoint and report."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from compressor.baseline import BaselineRequest, get_baseline
from compressor.checkpoint import Checkpoint, ModelSpec, load_checkpoint, load_dataset_for, save_checkpoint
from compressor.data import Dataset, dataset_slug, default_cache_dir, load_dataset
from compressor.environment import environment
from compressor.errors import CompressorError
from compressor.fileio import write_json_atomic
from compressor.measure import MeasureConfig, measure_model
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.measure.harness import Int8Plan, latency_block, with_latency
from compressor.models import build_model
from compressor.preflight import ensure_writable_dir, ensure_writable_file, measurement_bytes
from compressor.report import plot_sensitivity
from compressor.registry import StrategyContext, build_strategy, get_strategy
from compressor.train import TrainConfig, recalibrate_batchnorm, train, zero_masks

REPORT_SCHEMA = "compressor.run/1"


@dataclass(frozen=True)
class Step:
    """One strategy of a pipeline with its parameter overrides (raw strings or typed values)."""

    strategy: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything `run` needs; `None` means "the default" (or "from the checkpoint" when `model` is given)."""

    steps: list[Step]
    arch: str | None = None
    dataset: str | None = None
    model: Path | None = None
    data_dir: Path | None = None
    cache_dir: Path | None = None
    input_size: int | None = None
    epochs: int | None = None
    seed: int = 0
    pretrained: bool = False
    output: Path | None = None
    finetune_epochs: float = 0  # fractions run the first part of one shuffled epoch
    finetune_lr: float = 0.01
    bn_recalibrate: bool = False
    measure: MeasureConfig = MeasureConfig()
    artifacts_dir: Path | None = None
    show_progress: bool = True
    command: str | None = None
    device: str = "auto"  # where training, fine-tuning and calibration run (see compressor.device)


@dataclass
class RunResult:
    """The JSON report, the compressed model and where both were written."""

    report: dict[str, Any]
    checkpoint: Checkpoint
    report_path: Path
    checkpoint_path: Path


def parse_steps(strategies: list[str], amount: float | str | None = None,
                params: list[str] | None = None) -> list[Step]:
    """Build pipeline steps from `a+b` names, a shared `amount` and `key=value` / `step.key=value` overrides."""
    names = [name.strip() for spec in strategies for name in spec.split("+")]
    if not names or any(not n for n in names):
        raise CompressorError(f"--strategy needs one or more names (a, a+b); got {'+'.join(strategies)!r}")
    infos = [get_strategy(n) for n in names]
    steps = [Step(n, {}) for n in names]
    if amount is not None:
        takers = [s for s, info in zip(steps, infos) if any(p.name == "amount" for p in info.params)]
        if not takers:
            raise CompressorError(f"--amount does not apply: none of {', '.join(names)} has an amount parameter")
        for step in takers:
            step.params["amount"] = amount
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CompressorError(f"--param expects key=value or strategy.key=value; got {item!r}")
        target, dot, pname = key.rpartition(".")
        chosen = [(s, i) for s, i in zip(steps, infos) if not dot or s.strategy == target]
        if dot and not chosen:
            raise CompressorError(f"--param {item!r} names strategy {target!r}, which is not in the pipeline "
                                  f"({'+'.join(names)})")
        if not dot:
            chosen = [(s, i) for s, i in chosen if any(p.name == pname for p in i.params)]
            if not chosen:
                known = ", ".join(f"{i.name}: {', '.join(p.name for p in i.params) or '(none)'}" for i in infos)
                raise CompressorError(f"--param {item!r}: no strategy in the pipeline has a parameter {pname!r} "
                                      f"({known})")
        for step, info in chosen:
            info.param(pname)
            step.params[pname] = value
    for index, step in enumerate(steps):
        strategy = build_strategy(step.strategy, step.params)
        if getattr(strategy, "acts_on_export", False) and index < len(steps) - 1:
            raise CompressorError(f"{step.strategy} acts on the exported model and must be the last step; "
                                  f"{steps[index + 1].strategy} comes after it")
    return steps


def _pipeline_slug(steps: list[Step]) -> str:
    parts = []
    for step in steps:
        amount = step.params.get("amount")
        parts.append(f"{step.strategy}-{amount}" if amount is not None else step.strategy)
    return "+".join(parts)


@dataclass
class RunPlan:
    """What `run` will do, checked before any expensive work: inputs found, steps fit the model, outputs writable."""

    dataset: Dataset
    arch: str
    report_path: Path
    checkpoint_path: Path
    baseline: Checkpoint | None  # None: the cached baseline is loaded, or trained, by `run`
    request: BaselineRequest | None


def check_fit(steps: list[Step], model: nn.Module) -> None:
    """Fail if a step cannot act on this architecture (strategies with a `check(model)` method say so)."""
    for step in steps:
        check = getattr(build_strategy(step.strategy, step.params), "check", None)
        if check is not None:
            check(model)


def plan_run(config: RunConfig) -> RunPlan:
    """Every check that takes seconds: options, dataset, checkpoint, strategy fit, output and scratch space."""
    if config.output is not None and config.output.suffix == ".pt":
        raise CompressorError(f"--output {config.output} would collide with the checkpoint written beside the "
                              "report (same name, .pt); name the report .json")
    if config.model is not None:
        checkpoint = load_checkpoint(config.model)
        spec = checkpoint.spec
        if config.arch is not None and config.arch != spec.arch:
            raise CompressorError(f"--arch {config.arch} contradicts the checkpoint {config.model}, which holds a "
                                  f"{spec.arch}; drop --arch or pass a matching checkpoint")
        if config.input_size is not None and config.input_size != spec.input_size:
            raise CompressorError(f"--input-size {config.input_size} contradicts the checkpoint's input size "
                                  f"{spec.input_size}")
        dataset = load_dataset_for(spec, config.dataset, data_dir=config.data_dir, cache_dir=config.cache_dir)
        model, arch, request = checkpoint.model, spec.arch, None
    else:
        checkpoint = None
        dataset = load_dataset(config.dataset or "digits", data_dir=config.data_dir, cache_dir=config.cache_dir)
        arch = config.arch or "resnet18"
        request = BaselineRequest(arch=arch, input_size=config.input_size, epochs=config.epochs, seed=config.seed,
                                  pretrained=config.pretrained)
        model = build_model(arch, dataset.info.num_classes, dataset.info.channels)
    check_fit(config.steps, model)
    report_path = config.output or Path("runs") / f"{arch}-{dataset_slug(dataset.info.name)}-" \
                                                  f"{_pipeline_slug(config.steps)}.json"
    n_params = sum(p.numel() for p in model.parameters())
    ensure_writable_file(report_path, "the report", need_bytes=3 * 4 * n_params)
    scratch = config.artifacts_dir or Path(tempfile.gettempdir())
    ensure_writable_dir(scratch, "the measurement scratch directory",
                        need_bytes=measurement_bytes(n_params, len(config.measure.compressions)))
    return RunPlan(dataset, arch, report_path, report_path.with_suffix(".pt"), checkpoint, request)


def _load_baseline(plan: RunPlan, config: RunConfig, console: Console) -> tuple[Checkpoint, str]:
    """The baseline the plan names: the given checkpoint, or the cached (or freshly trained) one."""
    if plan.baseline is not None:
        return plan.baseline, str(config.model)
    checkpoint, path = get_baseline(plan.request, plan.dataset, cache_dir=config.cache_dir,
                                    show_progress=config.show_progress, console=console)
    return checkpoint, str(path)


def _recover(model: nn.Module, dataset: Dataset, spec: ModelSpec, config: RunConfig, history: list[dict[str, Any]],
             console: Console) -> dict[str, Any]:
    """Optional BatchNorm recalibration and fine-tuning with pruned weights held at zero; test accuracy before it."""
    recovery: dict[str, Any] = {"bn_recalibrate": config.bn_recalibrate, "finetune_epochs": config.finetune_epochs}
    if not config.bn_recalibrate and config.finetune_epochs == 0:
        return recovery
    before = evaluate(torch_forward(model), dataset.test, spec.input_size)
    recovery["before"] = {"accuracy_before_recovery": before["accuracy"],
                          "f1_macro_before_recovery": before["f1_macro"]}
    if config.bn_recalibrate:
        recovery["bn_images"] = recalibrate_batchnorm(model, dataset.train, spec.input_size, seed=config.seed)
        history.append({"step": "bn_recalibrate", "images": recovery["bn_images"]})
    if config.finetune_epochs > 0:
        masks = zero_masks(model)
        stats = train(model, dataset.train, spec.input_size,
                      TrainConfig(epochs=config.finetune_epochs, lr=config.finetune_lr, seed=config.seed),
                      masks=masks, description="fine-tune", show_progress=config.show_progress)
        recovery["finetune"] = {**stats, "masked_tensors": len(masks)}
        history.append({"step": "finetune", **stats})
    console.print(f"[bold]recovery[/bold] test accuracy before: {before['accuracy']:.4f}")
    return recovery


def _int8_plan(deploy: dict[str, Any], dataset: Dataset, seed: int) -> Int8Plan:
    """Calibration batches of single training images for int8 quantization."""
    samples, per_channel = deploy["calib_samples"], deploy["per_channel"]

    def calibration(size: int) -> list[np.ndarray]:
        batches = dataset.train.batches(size, 1, shuffle=True, seed=seed)
        return [x.numpy() for _, (x, _) in zip(range(samples), batches)]

    return Int8Plan(calibration, per_channel)


def _measure_pair(models: dict[str, nn.Module], spec: ModelSpec, dataset: Dataset, config: RunConfig,
                  console: Console, int8: dict[str, Int8Plan]) -> dict[str, dict[str, Any]]:
    """Measure baseline and compressed the same way; their latencies are timed interleaved, not one after the other."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="compressor-run-") as scratch:
        root = config.artifacts_dir or Path(scratch)
        for role, the_model in models.items():
            console.print(f"[bold]measuring[/bold] {role}: size, complexity, accuracy (torch and ONNX Runtime)")
            results[role] = measure_model(the_model, in_channels=spec.in_channels, input_size=spec.input_size,
                                          split=dataset.test, config=config.measure, artifacts_dir=root / role,
                                          latency=False, int8=int8.get(role))
        console.print(f"[bold]timing[/bold] {', '.join(models)} interleaved on {', '.join(config.measure.backends)}")

        def artifact(role: str, variant: str) -> Path | None:
            rows = [r["file"] for r in results[role]["size"]["variants"] if r["variant"] == variant]
            return Path(rows[0]) if rows else None

        deploy_size = config.measure.input_size or spec.input_size
        timings = latency_block({role: (models[role], artifact(role, "onnx"), artifact(role, "onnx-int8"))
                                 for role in models}, spec.in_channels, deploy_size, config.measure)
    return {role: with_latency(results[role], timings[role]) for role in models}


def run(config: RunConfig, console: Console | None = None) -> RunResult:
    """Apply the pipeline to the baseline, measure baseline and result on the test split, save both artifacts."""
    console = console or Console(stderr=True)
    steps = config.steps
    plan = plan_run(config)
    baseline, baseline_source = _load_baseline(plan, config, console)
    spec, dataset = baseline.spec, plan.dataset
    report_path, checkpoint_path = plan.report_path, plan.checkpoint_path

    torch.manual_seed(config.seed)
    model = copy.deepcopy(baseline.model)
    context = StrategyContext(dataset=dataset, input_size=spec.input_size, seed=config.seed,
                              cache_dir=config.cache_dir or default_cache_dir(), show_progress=config.show_progress)
    step_reports, history = [], list(baseline.history)
    deploy: dict[str, Any] = {}
    for index, step in enumerate(steps):
        if deploy:
            raise CompressorError(f"{steps[index - 1].strategy} acts on the exported model and must be the last step; "
                                  f"{step.strategy} comes after it")
        strategy = build_strategy(step.strategy, step.params)
        console.print(f"[bold]applying[/bold] {step.strategy} {dataclasses.asdict(strategy)}")
        start = time.perf_counter()
        output = strategy.apply(model, context)
        model = output.model
        deploy.update(output.deploy or {})
        entry = {"strategy": step.strategy, "params": dataclasses.asdict(strategy),
                 "seconds": round(time.perf_counter() - start, 3), "record": output.record}
        step_reports.append(entry)
        history.append({"step": "strategy", **{k: v for k, v in entry.items() if k != "record"}})
    recovery = _recover(model, dataset, spec, config, history, console)
    compressed = Checkpoint(spec, model, history)
    save_checkpoint(compressed, checkpoint_path)

    int8 = {"compressed": _int8_plan(deploy["int8"], dataset, config.seed)} if "int8" in deploy else {}
    measured = _measure_pair({"baseline": baseline.model, "compressed": model}, spec, dataset, config, console, int8)
    measured["baseline"]["checkpoint"] = baseline_source
    measured["compressed"]["checkpoint"] = str(checkpoint_path)
    measured["compressed"].update(recovery.pop("before", {}))

    params: dict[str, Any] = {}
    for entry in step_reports:
        key = entry["strategy"] if entry["strategy"] not in params else f"{entry['strategy']}#{len(params) + 1}"
        params[key] = entry["params"]
    report = {
        "schema": REPORT_SCHEMA,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": config.command,
        "strategy": "+".join(s.strategy for s in steps),
        "params": params,
        "steps": step_reports,
        "recovery": recovery,
        "model": {"arch": spec.arch, "input_size": spec.input_size, "in_channels": spec.in_channels,
                  "num_classes": spec.num_classes, "baseline": baseline_source, "seed": config.seed},
        "dataset": {"name": spec.dataset, "split": "test", "samples": len(dataset.test)},
        "environment": environment(),
        "baseline": measured["baseline"],
        "compressed": measured["compressed"],
    }
    plots = {}
    for index, entry in enumerate(step_reports):
        if "sensitivity" in entry["record"]:
            plot = report_path.with_name(f"{report_path.stem}.step{index + 1}-sensitivity.png")
            plots[f"step{index + 1}_sensitivity"] = str(plot_sensitivity(entry["record"]["sensitivity"], plot))
    report["plots"] = plots
    write_json_atomic(report, report_path)
    return RunResult(report, compressed, report_path, checkpoint_path)
