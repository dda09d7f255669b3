"""The Python API over any `nn.Module` and any loader: `compress(model, "channels", ...)` and `measure(model, ...)`.

`compress` runs a pipeline of registered strategies (optionally followed by BatchNorm recalibration and
fine-tuning with pruned weights held at zero) on a copy of the model; `measure` gives size, latency, MACs and
accuracy the same way `compressor run` does. The CLI's `run` uses the same `apply_steps` and `recover`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compressor.data import default_cache_dir
from compressor.device import resolve_device
from compressor.errors import CompressorError
from compressor.head import LinearConfig, refit_classifier
from compressor.loaders import Batch, LoaderSplit, Split, split_key
from compressor.measure import MeasureConfig, measure_model
from compressor.measure.harness import Int8Plan
from compressor.progress import ProgressCallback, RichProgress, silent_progress
from compressor.recovery_recipes import get_recovery_recipe
from compressor.registry import StrategyContext, build_strategy, removes_structure, strategy_check
from compressor.steps import Step, check_order, export_not_last, parse_steps, recalibration_recommended
from compressor.train import PRECISIONS, TrainConfig, recalibrate_batchnorm, train, zero_masks

DEFAULT_FINETUNE_LR = 0.01  # fine-tuning's peak LR when nothing says otherwise (the CLI scales the baseline's)


@dataclass
class RecoveryConfig:
    """What to do after the strategies: BatchNorm recalibration and fine-tuning (pruned weights stay zero),
    optionally distilled from the uncompressed model."""

    finetune_epochs: float = 0
    finetune_lr: float = DEFAULT_FINETUNE_LR
    bn_recalibrate: bool | None = None  # None: when a step recommends it (structure removed, second order, ...)
    seed: int = 0
    distill: bool = False
    distill_alpha: float = 0.5
    distill_temperature: float = 4.0
    label_smoothing: float = 0.0
    prune_rounds: int = 1  # gradual pruning: reach the targets in this many rounds, fine-tuning between them
    precision: str = "auto"  # of fine-tuning: fp32 | bf16 | auto (a short probe on runs of 100+ steps)
    freeze_batchnorm: bool = False  # fine-tuning keeps BatchNorm running statistics (eval mode)
    refit_head: bool = False  # last: fit the final linear layer again on the penultimate features (compressor.head)
    recipe: str = "standard"  # the recovery recipe these settings came from (compressor.recovery_recipes), recorded

    def __post_init__(self) -> None:
        if not (math.isfinite(self.finetune_epochs) and self.finetune_epochs >= 0):
            raise CompressorError(f"finetune_epochs must be a finite number >= 0; got {self.finetune_epochs!r}")
        if not (math.isfinite(self.finetune_lr) and self.finetune_lr > 0):
            raise CompressorError(f"finetune_lr must be a finite number > 0; got {self.finetune_lr!r}")
        if not (math.isfinite(self.distill_alpha) and 0 <= self.distill_alpha <= 1):
            raise CompressorError(f"distill_alpha must be a number in [0, 1]; got {self.distill_alpha!r}")
        if not (math.isfinite(self.distill_temperature) and self.distill_temperature > 0):
            raise CompressorError(f"distill_temperature must be a number > 0; got {self.distill_temperature!r}")
        if not (math.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            raise CompressorError(f"label_smoothing must be a number in [0, 1); got {self.label_smoothing!r}")
        if isinstance(self.prune_rounds, bool) or not isinstance(self.prune_rounds, int) or self.prune_rounds < 1:
            raise CompressorError(f"prune_steps must be an integer of at least 1; got {self.prune_rounds!r}")
        if self.prune_rounds > 1 and self.finetune_epochs == 0:
            raise CompressorError("gradual pruning fine-tunes between its steps: give finetune_epochs > 0 "
                                  "(--finetune-epochs) with prune_steps (--prune-steps)")
        if self.distill and self.finetune_epochs == 0:
            raise CompressorError("distillation happens during fine-tuning: give finetune_epochs > 0 "
                                  "(--finetune-epochs) with distill (--distill)")
        if self.precision not in PRECISIONS:
            raise CompressorError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")

    def for_steps(self, steps: Sequence[Step]) -> RecoveryConfig:
        """These settings with the automatic BatchNorm recalibration decided: on when a step recommends it."""
        if self.bn_recalibrate is not None:
            return self
        return dataclasses.replace(self, bn_recalibrate=recalibration_recommended(list(steps)))


@dataclass
class Compressed:
    """The compressed model, a JSON-able record of every step (and recovery), and the export plan (int8)."""

    model: nn.Module
    record: dict[str, Any]
    deploy: dict[str, Any] = field(default_factory=dict)
    int8: Int8Plan | None = None


@dataclass(frozen=True)
class ModelMeasurement:
    """Headline measurements of one model, with the harness's full record in `details`."""

    accuracy: float | None
    f1_macro: float | None
    latency_ms: dict[str, float]
    size_bytes: int
    deployable_bytes: int
    macs: int
    params: int
    sparsity: float
    details: dict[str, Any]


class MissingData:
    """Stands in for a loader the caller did not give; a strategy that needs it gets one clear line."""

    def __init__(self, role: str) -> None:
        self.role = role

    def __len__(self) -> int:
        raise self._error()

    def batches(self, input_size: int, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                seed: int = 0) -> Iterator[Batch]:
        """Fail: there is no data for this role."""
        raise self._error()

    def _error(self) -> CompressorError:
        return CompressorError(f"this pipeline needs {self.role} data: pass {self.role}=<a loader of (inputs, "
                               "labels) batches> to compress()")


def apply_steps(model: nn.Module, steps: Sequence[Step], context: StrategyContext,
                announce: Any = None) -> tuple[nn.Module, list[dict[str, Any]], dict[str, Any]]:
    """Apply each step in order: the model, one record per step, and the merged export-time plan."""
    records: list[dict[str, Any]] = []
    deploy: dict[str, Any] = {}
    for index, step in enumerate(steps):
        if deploy:
            raise export_not_last(steps[index - 1].strategy, step.strategy)
        strategy = build_strategy(step.strategy, step.params)
        if announce is not None:
            announce(step.strategy, dataclasses.asdict(strategy))
        start = time.perf_counter()
        output = strategy.apply(model, context)
        model = output.model
        deploy.update(output.deploy or {})
        records.append({"strategy": step.strategy, "params": dataclasses.asdict(strategy),
                        "seconds": round(time.perf_counter() - start, 3), "record": output.record})
    return model, records, deploy


def check_fit(steps: Sequence[Step], model: nn.Module) -> None:
    """Fail if a step cannot act on this model (strategies with a `check(model)` hook say so in one line)."""
    check_order(list(steps))
    for step in steps:
        strategy_check(build_strategy(step.strategy, step.params), model)


def recover(model: nn.Module, train_split: Split, input_size: int, recovery: RecoveryConfig, *,
            show_progress: bool = False, teacher: nn.Module | None = None) -> dict[str, Any]:
    """BatchNorm recalibration, fine-tuning (distilled from `teacher`, the uncompressed model, when
    `recovery.distill`) and a re-fit of the final linear layer, on `train_split` and the model's device; returns
    their record."""
    if recovery.distill and teacher is None:
        raise CompressorError("distillation needs a teacher: the uncompressed model")
    record: dict[str, Any] = {"bn_recalibrate": bool(recovery.bn_recalibrate),
                              "finetune_epochs": recovery.finetune_epochs, "distill": recovery.distill,
                              "recipe": recovery.recipe}
    if recovery.bn_recalibrate:
        record["bn_images"] = recalibrate_batchnorm(model, train_split, input_size, seed=recovery.seed)
    if recovery.finetune_epochs > 0:
        masks = zero_masks(model)
        batch_size = getattr(train_split, "batch_size", None) or TrainConfig.batch_size
        stats = train(model, train_split, input_size,
                      TrainConfig(epochs=recovery.finetune_epochs, lr=recovery.finetune_lr, seed=recovery.seed,
                                  batch_size=batch_size, label_smoothing=recovery.label_smoothing,
                                  distill_alpha=recovery.distill_alpha,
                                  distill_temperature=recovery.distill_temperature,
                                  precision=recovery.precision, freeze_batchnorm=recovery.freeze_batchnorm),
                      masks=masks, description="fine-tune (distilled)" if recovery.distill else "fine-tune",
                      show_progress=show_progress, teacher=teacher if recovery.distill else None)
        record["finetune"] = {**stats, "masked_tensors": len(masks)}
    if recovery.refit_head:
        record["refit_head"] = refit_classifier(model, train_split, input_size, LinearConfig(seed=recovery.seed))
    return record


def cubic_fraction(step: int, steps: int) -> float:
    """Zhu & Gupta's cubic schedule: the share of the final amount reached after `step` of `steps` steps."""
    return 1 - (1 - step / steps) ** 3


def scheduled_steps(steps: Sequence[Step], step: int, total: int) -> list[Step]:
    """The pipeline's steps for pruning round `step` of `total`: amounts on the cubic schedule (masking strategies
    get the cumulative amount, structural ones the share of what is left); steps without an amount run in the last
    round only."""
    chosen = []
    for item in steps:
        strategy = build_strategy(item.strategy, item.params)
        target = getattr(strategy, "amount", None)
        if not isinstance(target, float | int) or target == 0:
            if step == total:
                chosen.append(item)
            continue
        now, before = target * cubic_fraction(step, total), target * cubic_fraction(step - 1, total)
        amount = 1 - (1 - now) / (1 - before) if removes_structure(strategy) else now
        chosen.append(Step(item.strategy, {**item.params, "amount": amount}))
    return chosen


def _hold_zeros(model: nn.Module, zeros: dict[str, torch.Tensor]) -> None:
    """Zero again every weight that was zero before a round (where the tensor kept its shape)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, keep in zeros.items():
            if name in params and params[name].shape == keep.shape:
                params[name].masked_fill_(~keep.to(params[name].device), 0.0)


def prune_gradually(model: nn.Module, steps: Sequence[Step], context: StrategyContext, rounds: int,
                    recovery: RecoveryConfig, *, teacher: nn.Module | None = None, show_progress: bool = False,
                    announce: Any = None) -> tuple[nn.Module, list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Reach the pipeline's targets in `rounds` pruning rounds, fine-tuning between them (the fine-tuning budget
    split evenly); pruned weights stay exactly zero throughout. Returns the model, one record per applied step
    (with its round), the export plan and the recovery record."""
    share = dataclasses.replace(recovery, finetune_epochs=recovery.finetune_epochs / rounds)
    records: list[dict[str, Any]] = []
    per_round: list[dict[str, Any]] = []
    deploy: dict[str, Any] = {}
    for index in range(1, rounds + 1):
        zeros = zero_masks(model)
        model, applied, deploy = apply_steps(model, scheduled_steps(steps, index, rounds), context, announce)
        _hold_zeros(model, zeros)
        records += [{**entry, "round": index} for entry in applied]
        per_round.append({"round": index, **recover(model, context.train, context.input_size, share,
                                                    show_progress=show_progress, teacher=teacher)})
    record = {"bn_recalibrate": bool(recovery.bn_recalibrate), "finetune_epochs": recovery.finetune_epochs,
              "distill": recovery.distill, "recipe": recovery.recipe, "prune_rounds": rounds,
              "schedule": "cubic (Zhu & Gupta)", "rounds": per_round}
    return model, records, deploy, record


def int8_plan(deploy: dict[str, Any], calib: Split, seed: int) -> Int8Plan:
    """Calibration batches of single images from `calib` for int8 quantization at export."""
    samples, per_channel = deploy["calib_samples"], deploy["per_channel"]

    def calibration(size: int) -> list[np.ndarray]:
        batches = calib.batches(size, 1, shuffle=True, seed=seed)
        return [x.numpy() for _, (x, _) in zip(range(samples), batches)]

    return Int8Plan(calibration, per_channel, method=deploy.get("calibration", "minmax"))


def resolve_int8_plan(plan: Int8Plan, deploy: dict[str, Any], model: nn.Module, in_channels: int,
                      input_size: int, judge: Split) -> tuple[Int8Plan, dict[str, Any] | None]:
    """`plan` with calibration "auto" replaced by the method most accurate on `judge` (and that choice's record)."""
    if plan.method != "auto":
        return plan, None
    if input_size < 1 or isinstance(judge, MissingData):
        return dataclasses.replace(plan, method="minmax"), {"chosen": "minmax", "reason": "no held-out data to judge"}
    from compressor.measure.int8_choice import choose_calibration

    return choose_calibration(model, in_channels, input_size, plan, judge, deploy.get("judge_samples", 500))


def _split(loader: Iterable[Any] | Split | None, role: str) -> Split:
    if loader is None:
        return MissingData(role)  # type: ignore[return-value]
    if hasattr(loader, "batches") and hasattr(loader, "__len__"):
        return loader  # type: ignore[return-value]
    return LoaderSplit(loader, role)


def _input_shape(example_input: torch.Tensor | None, *splits: Split, required: bool = True) -> tuple[int, int]:
    """(channels, square input size) from `example_input`, else from the first batch of a given loader; (0, 0)
    when neither is given and the shape is not `required`."""
    shape = tuple(example_input.shape) if example_input is not None else None
    for split in splits:
        if shape is None and isinstance(split, LoaderSplit):
            shape = tuple(split.first_batch()[0].shape)
    if shape is None and not required:
        return 0, 0
    if shape is None:
        raise CompressorError("pass example_input=torch.randn(1, C, H, W) (or a loader) so the input shape is known")
    if len(shape) != 4 or shape[-1] != shape[-2]:
        raise CompressorError(f"example_input must be a square image batch [N, C, S, S]; got shape {list(shape)}")
    return int(shape[1]), int(shape[-1])


def _params_list(params: Mapping[str, Any] | None) -> list[str]:
    return [f"{key}={value}" for key, value in (params or {}).items()]


def compress(model: nn.Module, strategy: str | Sequence[str], *, amount: float | None = None,
             params: Mapping[str, Any] | None = None, train: Iterable[Any] | None = None,
             calib: Iterable[Any] | None = None, example_input: torch.Tensor | None = None,
             finetune_epochs: float = 0, finetune_lr: float = DEFAULT_FINETUNE_LR,
             bn_recalibrate: bool | None = None, recovery_recipe: str = "standard",
             distill: bool | None = None, distill_alpha: float | None = None, distill_temperature: float = 4.0,
             freeze_batchnorm: bool | None = None, refit_head: bool | None = None,
             label_smoothing: float = 0.0, prune_steps: int = 1, precision: str = "auto",
             device: str | torch.device = "auto", seed: int = 0, cache_dir: Path | None = None,
             progress: bool | ProgressCallback = False, inplace: bool = False) -> Compressed:
    """Compress any classifier with a strategy or pipeline (`"blocks+l1+int8"`); the caller's model is untouched.

    `train` and `calib` are iterables of (inputs, labels) batches, e.g. torch DataLoaders; `calib` defaults to
    `train`. `params` maps `key` or `strategy.key` to a value, as `--param` does. With `distill`, fine-tuning
    distils the uncompressed model (α·T²·KL + (1−α)·CE). BatchNorm statistics are re-estimated after strategies
    that recommend it (registry.recommends_bn_recalibration) unless `bn_recalibrate` says otherwise.
    `recovery_recipe` ("standard" or "frozen-encoder", see compressor.recovery_recipes) gives `distill`,
    `distill_alpha`, `freeze_batchnorm` and `refit_head` the values they take when left None. With `prune_steps`
    N > 1 the targets are reached in N
    rounds on Zhu & Gupta's cubic schedule, with `finetune_epochs / N` of fine-tuning after each. The result's model
    lives on `device`; `record` holds each step's record and the recovery; `int8` carries the export-time plan.
    """
    names = [strategy] if isinstance(strategy, str) else list(strategy)
    steps = parse_steps(names, amount, _params_list(params))
    recipe_name, recipe = get_recovery_recipe(recovery_recipe)
    filled = recipe.fill(finetune_epochs, distill=distill, distill_alpha=distill_alpha,
                         freeze_batchnorm=freeze_batchnorm, refit_head=refit_head)
    distill = filled["distill"]
    recovery = RecoveryConfig(finetune_epochs, finetune_lr, bn_recalibrate, seed,
                              distill_temperature=distill_temperature, label_smoothing=label_smoothing,
                              prune_rounds=prune_steps, precision=precision, recipe=recipe_name,
                              **filled).for_steps(steps)
    target = resolve_device(device)
    teacher = copy.deepcopy(model).to(target).eval() if distill else None
    work = model if inplace else copy.deepcopy(model)
    work.to(target)
    train_split, calib_split = _split(train, "train"), _split(calib if calib is not None else train, "calib")
    recovery_split = train_split
    if recovery.refit_head and train is None:
        raise CompressorError("refit_head fits the final layer on training features: pass train=<a loader>")
    if train is None and finetune_epochs == 0 and bn_recalibrate is None:
        # automatic BatchNorm recalibration without train data: on the calibration data, or not at all
        recovery_split = calib_split
        if calib is None:
            recovery = dataclasses.replace(recovery, bn_recalibrate=False)
    in_channels, input_size = _input_shape(example_input, calib_split, train_split, required=False)
    check_fit(steps, work)
    callback = (RichProgress() if progress is True else silent_progress if progress is False else progress)
    data_key = "none" if isinstance(calib_split, MissingData) else split_key(calib_split, "calib")
    context = StrategyContext(train=train_split, calib=calib_split, input_size=input_size, data_key=data_key,
                              seed=seed, device=target, cache_dir=cache_dir or default_cache_dir(),
                              progress=callback)
    torch.manual_seed(seed)
    if prune_steps > 1:
        work, records, deploy, recovered = prune_gradually(work, steps, context, prune_steps, recovery,
                                                           teacher=teacher, show_progress=progress is True)
    else:
        work, records, deploy = apply_steps(work, steps, context)
        recovered = recover(work, recovery_split, input_size, recovery, show_progress=progress is True,
                            teacher=teacher)
    work.eval()
    plan, choice = None, None
    if "int8" in deploy:
        cpu_model = copy.deepcopy(work).cpu() if target.type != "cpu" else work
        plan, choice = resolve_int8_plan(int8_plan(deploy["int8"], calib_split, seed), deploy["int8"], cpu_model,
                                         in_channels, input_size, calib_split)
    record = {"strategy": "+".join(s.strategy for s in steps), "steps": records, "recovery": recovered,
              "device": str(target), "input_size": input_size,
              **({"int8_calibration": choice} if choice is not None else {})}
    return Compressed(work, record, deploy, plan)


def measure(model: nn.Module | Compressed, loader: Iterable[Any] | None = None, *,
            example_input: torch.Tensor | None = None, backends: Sequence[str] = ("torch", "onnxruntime"),
            batch_size: int = 1, threads: int | None = None, compressions: Sequence[str] = ("zip",),
            artifacts_dir: Path | None = None, deploy_size: int | None = None, batch_sizes: Sequence[int] = (),
            thread_counts: Sequence[int] = ()) -> ModelMeasurement:
    """Size on disk, latency per backend, MACs and (with a loader) accuracy of a model, on the CPU.

    Given the result of `compress` with an int8 step, the model is measured as deployed: quantized ONNX. With
    `deploy_size`, `batch_sizes` or `thread_counts`, `details["latency_grid"]` also times it at the input size and
    at `deploy_size` for every batch size and thread count (default 1 and all cores), with MACs per size.
    """
    int8 = model.int8 if isinstance(model, Compressed) else None
    module = model.model if isinstance(model, Compressed) else model
    if any(p.device.type != "cpu" for p in module.parameters()):
        module = copy.deepcopy(module).cpu()
    split = _split(loader, "test") if loader is not None else None
    channels, input_size = _input_shape(example_input, *([split] if split is not None else []))
    config = MeasureConfig(backends=tuple(backends), batch_size=batch_size, threads=threads,
                           compressions=tuple(compressions))
    details = measure_model(module, in_channels=channels, input_size=input_size, split=split, config=config,
                            artifacts_dir=artifacts_dir, int8=int8)
    from compressor.measure.grid import check_input_size, measure_grid, requested_grid

    grid = requested_grid(input_size, deploy_size, batch_sizes, thread_counts, batch_size)
    if grid is not None:
        if deploy_size is not None:
            check_input_size(module, channels, deploy_size, "deploy_size")
        with tempfile.TemporaryDirectory(prefix="compressor-api-grid-") as scratch:
            details["latency_grid"] = measure_grid({"model": module}, channels, grid, config, Path(scratch),
                                                   {"model": int8} if int8 is not None else None)["model"]
    latency = {backend: stats["median_ms"] for backend, stats in details["latency"].items() if "median_ms" in stats}
    return ModelMeasurement(accuracy=details.get("accuracy"), f1_macro=details.get("f1_macro"), latency_ms=latency,
                       size_bytes=int(details["size_bytes"]), deployable_bytes=int(details["deployable_bytes"]),
                       macs=int(details["macs"]), params=int(details["params_total"]),
                       sparsity=float(details["sparsity"]), details=details)
