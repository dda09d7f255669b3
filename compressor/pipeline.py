"""run(): load or train the baseline -> apply strategies in order -> recover -> measure both -> save checkpoint and
report."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from compressor._util.device import resolve_device
from compressor._util.environment import environment
from compressor._util.memory import peak_memory
from compressor._util.preflight import ensure_writable_dir, ensure_writable_file, measurement_bytes
from compressor._util.progress import RichProgress, silent_progress
from compressor.api import apply_and_recover, int8_plan, resolve_int8_plan
from compressor.data import Dataset, dataset_slug, default_cache_dir, load_dataset
from compressor.errors import CompressorError
from compressor.measure import MeasureConfig, measure_model
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.measure.grid import (
    LatencyGrid,
    check_input_size,
    grid_speedups,
    measure_grid,
    requested_grid,
    speedup_summary,
)
from compressor.measure.harness import Int8Plan, latency_block, with_latency
from compressor.models.baselines import (
    DEFAULT_RECIPE,
    BaselineRequest,
    baseline_finetune_lr,
    get_baseline,
    model_spec,
    training_config,
)
from compressor.models.checkpoint import (
    Checkpoint,
    ModelSpec,
    dataset_for_arch,
    load_dataset_for,
    load_state_dict_into,
    read_model_file,
    save_checkpoint,
)
from compressor.models.zoo import arch_slug, build_model, input_size_for
from compressor.recovery.config import RecoveryConfig
from compressor.report.layer_plots import draw_run_plots
from compressor.report.schema import (
    DatasetInfo,
    Environment,
    Measurement,
    ModelInfo,
    Recovery,
    RunReport,
    StepReport,
    step_params,
    write_run_report,
)
from compressor.strategies.registry import StrategyContext
from compressor.strategies.steps import Step, check_fit


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
    seed: int = 0  # strategies, calibration batches, fine-tuning
    baseline_seed: int | None = None  # seed of the cached baseline's training; None: `seed`
    pretrained: bool = False
    output: Path | None = None
    recovery: RecoveryConfig = RecoveryConfig()  # after the strategies; resolved against the baseline by `run`
    measure: MeasureConfig = MeasureConfig()
    artifacts_dir: Path | None = None
    show_progress: bool = True
    command: str | None = None
    device: str = "auto"  # where training, fine-tuning and calibration run (see compressor._util.device)
    recipe: str = DEFAULT_RECIPE  # how a missing baseline is trained (compressor.models.baselines.RECIPES)
    precision: str | None = None  # of baseline training, and of fine-tuning unless `recovery.precision` says
    deploy_size: int | None = None  # also time both models (and count MACs) at this input size
    batch_sizes: tuple[int, ...] = ()  # also time at these batch sizes (with deploy_size: at both sizes)
    thread_counts: tuple[int, ...] = ()  # the grid's thread counts; empty: 1 and all cores

    def latency_grid(self, trained_size: int) -> LatencyGrid | None:
        """The extra timings asked for, at the training size and the deployment size; None when none were."""
        return requested_grid(trained_size, self.deploy_size, self.batch_sizes, self.thread_counts,
                              self.measure.batch_size)

    def resolved_recovery(self, history: list[dict[str, Any]], baseline_lr: float | None) -> RecoveryConfig:
        """The recovery settings with every default decided for this baseline (its history picks the recovery
        recipe; its peak LR scaled gives the fine-tuning LR), the run's seed and precision."""
        given = dataclasses.replace(self.recovery, seed=self.seed,
                                    precision=self.recovery.precision or self.precision)
        return given.resolved(self.steps, history, baseline_lr)


@dataclass
class RunResult:
    """The JSON report, the compressed model and where both were written."""

    report: dict[str, Any]
    checkpoint: Checkpoint
    report_path: Path
    checkpoint_path: Path


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
    note: str | None = None  # said once before the work starts (e.g. grayscale repeated to RGB)


def _from_model_file(config: RunConfig) -> tuple[Checkpoint, Dataset, str | None]:
    """The baseline in `config.model` (a compressor checkpoint, or a plain state_dict of `--arch`) and its data."""
    assert config.model is not None
    loaded = read_model_file(config.model)
    if isinstance(loaded, Checkpoint):
        spec = loaded.spec
        if config.arch is not None and config.arch != spec.arch:
            raise CompressorError(f"--arch {config.arch} contradicts the checkpoint {config.model}, which holds a "
                                  f"{spec.arch}; drop --arch or pass a matching checkpoint")
        if config.input_size is not None and config.input_size != spec.input_size:
            raise CompressorError(f"--input-size {config.input_size} contradicts the checkpoint's input size "
                                  f"{spec.input_size}")
        dataset = load_dataset_for(spec, config.dataset, data_dir=config.data_dir, cache_dir=config.cache_dir)
        return loaded, dataset, None
    if config.arch is None:
        raise CompressorError(f"{config.model} is a plain state_dict; pass --arch to say which architecture it holds "
                              f"(e.g. torchvision:resnet18 or package.module:factory)")
    dataset = load_dataset(config.dataset or "digits", data_dir=config.data_dir, cache_dir=config.cache_dir)
    dataset, note = dataset_for_arch(dataset, config.arch)
    size = input_size_for(config.arch, dataset.info.native_size, config.input_size)
    model = build_model(config.arch, dataset.info.num_classes, dataset.info.channels)
    load_state_dict_into(model, loaded, config.model, config.arch)
    return Checkpoint(model_spec(config.arch, dataset, size), model,
                      [{"step": "import", "state_dict": str(config.model)}]), dataset, note


def plan_run(config: RunConfig) -> RunPlan:
    """Every check that takes seconds: options, device, dataset, model, strategy fit, output and scratch space."""
    if config.output is not None and config.output.suffix == ".pt":
        raise CompressorError(f"--output {config.output} would collide with the checkpoint written beside the "
                              "report (same name, .pt); name the report .json")
    resolve_device(config.device)
    if config.model is not None:
        checkpoint, dataset, note = _from_model_file(config)
        model, arch, request = checkpoint.model, checkpoint.spec.arch, None
    else:
        checkpoint = None
        arch = config.arch or "resnet18"
        dataset = load_dataset(config.dataset or "digits", data_dir=config.data_dir, cache_dir=config.cache_dir)
        dataset, note = dataset_for_arch(dataset, arch)
        request = BaselineRequest(arch=arch, input_size=config.input_size, epochs=config.epochs,
                                  seed=config.seed if config.baseline_seed is None else config.baseline_seed,
                                  pretrained=config.pretrained, recipe=config.recipe, precision=config.precision)
        training_config(request, dataset.info.name)  # an unknown recipe is a usage error before any work
        model = build_model(arch, dataset.info.num_classes, dataset.info.channels)
    check_fit(config.steps, model)
    report_path = config.output or Path("runs") / f"{arch_slug(arch)}-{dataset_slug(dataset.info.name)}-" \
                                                  f"{_pipeline_slug(config.steps)}.json"
    n_params = sum(p.numel() for p in model.parameters())
    ensure_writable_file(report_path, "the report", need_bytes=3 * 4 * n_params)
    scratch = config.artifacts_dir or Path(tempfile.gettempdir())
    ensure_writable_dir(scratch, "the measurement scratch directory",
                        need_bytes=measurement_bytes(n_params, len(config.measure.compressions)))
    return RunPlan(dataset, arch, report_path, report_path.with_suffix(".pt"), checkpoint, request, note)


def _load_baseline(plan: RunPlan, config: RunConfig, console: Console) -> tuple[Checkpoint, str]:
    """The baseline the plan names: the given checkpoint, or the cached (or freshly trained) one."""
    if plan.baseline is not None:
        return plan.baseline, str(config.model)
    assert plan.request is not None
    checkpoint, path = get_baseline(plan.request, plan.dataset, cache_dir=config.cache_dir,
                                    show_progress=config.show_progress, console=console, device=config.device)
    return checkpoint, str(path)


def _history_of(recovery: dict[str, Any]) -> list[dict[str, Any]]:
    """The checkpoint history entries of one recovery record: recalibration, fine-tuning, head re-fit."""
    entries: list[dict[str, Any]] = []
    if "bn_images" in recovery:
        entries.append({"step": "bn_recalibrate", "images": recovery["bn_images"]})
    if "finetune" in recovery:
        entries.append({"step": "finetune", **{k: v for k, v in recovery["finetune"].items()
                                               if k != "masked_tensors"}})
    if "refit_head" in recovery:
        entries.append({"step": "refit_head", **recovery["refit_head"]})
    return entries


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


def _measure_deployment(models: dict[str, nn.Module], spec: ModelSpec, grid: LatencyGrid, config: RunConfig,
                        console: Console, int8: dict[str, Int8Plan],
                        measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Time both models over the grid; each measurement gets its `latency_grid`, the report the speed-ups."""
    console.print(f"[bold]timing[/bold] at {', '.join(f'{s} px' for s in grid.sizes)}, batch "
                  f"{', '.join(map(str, grid.batch_sizes))}, threads {', '.join(map(str, grid.threads))}")
    with tempfile.TemporaryDirectory(prefix="compressor-grid-") as scratch:
        timed = measure_grid(models, spec.in_channels, grid, config.measure, Path(scratch), int8)
    for role in models:
        measured[role]["latency_grid"] = timed[role]
    rows = grid_speedups(timed["baseline"], timed["compressed"])
    size = grid.sizes[-1]
    return {"deploy_size": size, "trained_size": spec.input_size, "speedups": rows,
            "summary": speedup_summary(rows, size),
            "mac_reduction": timed["baseline"]["macs"][str(size)] / timed["compressed"]["macs"][str(size)]}


def run(config: RunConfig, console: Console | None = None) -> RunResult:
    """Apply the pipeline to the baseline, measure baseline and result on the test split, save both artifacts."""
    console = console or Console(stderr=True)
    started_in = environment()  # the commit and dirty flag of the code that runs, read before anything runs
    steps = config.steps
    plan = plan_run(config)
    baseline, baseline_source = _load_baseline(plan, config, console)
    recovery = config.resolved_recovery(baseline.history, baseline_finetune_lr(baseline, None))
    spec, dataset = baseline.spec, plan.dataset
    report_path, checkpoint_path = plan.report_path, plan.checkpoint_path

    grid = config.latency_grid(spec.input_size)
    if config.deploy_size is not None:
        check_input_size(baseline.model, spec.in_channels, config.deploy_size)
    device = resolve_device(config.device)
    if plan.note:
        console.print(f"[yellow]note:[/yellow] {plan.note}")
    torch.manual_seed(config.seed)
    model = copy.deepcopy(baseline.model).to(device)
    context = StrategyContext.for_dataset(dataset, spec.input_size, seed=config.seed, device=device,
                                          cache_dir=config.cache_dir or default_cache_dir(),
                                          progress=RichProgress(console) if config.show_progress else silent_progress)
    history = list(baseline.history)

    def announce(name: str, params: dict[str, Any]) -> None:
        console.print(f"[bold]applying[/bold] {name} {params} on {device}")

    def before_recovery(pruned: nn.Module) -> dict[str, Any]:
        before = evaluate(torch_forward(pruned), dataset.test, spec.input_size)
        console.print(f"[bold]recovery[/bold] test accuracy before: {before['accuracy']:.4f}")
        return {"accuracy_before_recovery": before["accuracy"], "f1_macro_before_recovery": before["f1_macro"]}

    applied = apply_and_recover(model, steps, context, recovery, recovery_split=dataset.train,
                                teacher=copy.deepcopy(baseline.model) if recovery.distill else None,
                                show_progress=config.show_progress, announce=announce,
                                before_recovery=before_recovery)
    model, step_reports, deploy, recovered = applied.model, applied.steps, applied.deploy, applied.recovery
    resources = peak_memory()  # what the strategies and recovery needed, before measurement adds its own
    if recovery.prune_steps > 1:
        history += [{"step": "gradual pruning", **{k: v for k, v in recovered.items() if k != "rounds"}}]
    else:
        history += [{"step": "strategy", **{k: v for k, v in entry.items() if k != "record"}}
                    for entry in step_reports]
        history += _history_of(recovered)
    model.cpu().eval()
    compressed = Checkpoint(spec, model, history)
    save_checkpoint(compressed, checkpoint_path)

    int8, int8_choice = {}, None
    if "int8" in deploy:
        quantize, int8_choice = resolve_int8_plan(int8_plan(deploy["int8"], dataset.train, config.seed),
                                                  deploy["int8"], model, spec.in_channels, spec.input_size,
                                                  dataset.calib)
        if int8_choice is not None:
            console.print(f"[bold]int8[/bold] calibration {int8_choice['chosen']} "
                          f"(held-out accuracy {int8_choice['judge_accuracy']})")
        int8 = {"compressed": quantize}
    measured = _measure_pair({"baseline": baseline.model, "compressed": model}, spec, dataset, config, console, int8)
    deployment = None
    if grid is not None:
        deployment = _measure_deployment({"baseline": baseline.model, "compressed": model}, spec, grid, config,
                                         console, int8, measured)
    if int8_choice is not None:
        measured["compressed"]["int8_calibration"] = int8_choice
    measured["baseline"]["checkpoint"] = baseline_source
    measured["compressed"]["checkpoint"] = str(checkpoint_path)
    measured["compressed"].update(recovered.pop("before", {}))

    steps_done = [StepReport.from_dict(entry, f"steps[{index}].") for index, entry in enumerate(step_reports)]
    run_report = RunReport(
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        command=config.command,
        strategy="+".join(s.strategy for s in steps),
        params=step_params(steps_done),
        steps=steps_done,
        recovery=Recovery.from_dict(recovered, "recovery."),
        model=ModelInfo(arch=spec.arch, input_size=spec.input_size, in_channels=spec.in_channels,
                        num_classes=spec.num_classes, baseline=baseline_source, seed=config.seed,
                        baseline_seed=None if plan.request is None else plan.request.seed),
        dataset=DatasetInfo(name=spec.dataset, split="test", samples=len(dataset.test)),
        environment=Environment.from_dict(started_in, "environment."),
        baseline=Measurement.from_dict(measured["baseline"], "baseline."),
        compressed=Measurement.from_dict(measured["compressed"], "compressed."),
        deployment=deployment,
        resources=resources,
    )
    run_report.plots.update(draw_run_plots(run_report.to_dict(), report_path))
    write_run_report(run_report, report_path)
    report = run_report.to_dict()
    return RunResult(report, compressed, report_path, checkpoint_path)
