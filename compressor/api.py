"""The Python API over any `nn.Module` and any loader: `compress(model, "channels", ...)` and `measure(model, ...)`.

`compress` runs a pipeline of registered strategies (optionally followed by BatchNorm recalibration and
fine-tuning with pruned weights held at zero) on a copy of the model; `measure` gives size, latency, MACs and
accuracy the same way `compressor run` does. The CLI's `run` uses the same `apply_steps` and `recover`.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compressor._util.device import resolve_device
from compressor._util.progress import ProgressCallback, RichProgress, silent_progress
from compressor.data import default_cache_dir
from compressor.data.loaders import Batch, LoaderSplit, Split, split_key
from compressor.errors import CompressorError
from compressor.measure import MeasureConfig, measure_model
from compressor.measure.harness import Int8Plan
from compressor.recovery.config import DEFAULT_FINETUNE_LR, RecoveryConfig
from compressor.recovery.gradual import prune_gradually
from compressor.recovery.recipes import get_recovery_recipe
from compressor.recovery.recover import recover
from compressor.strategies.registry import StrategyContext
from compressor.strategies.steps import apply_steps, check_fit, parse_steps


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
    `recovery_recipe` ("standard" or "frozen-encoder", see compressor.recovery.recipes) gives `distill`,
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
