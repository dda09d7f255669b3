"""The Python API over any `nn.Module` and any loader: `compress(model, "channels", ...)` and `measure(model, ...)`.

`compress` runs a pipeline of registered strategies (optionally followed by BatchNorm recalibration and
fine-tuning with pruned weights held at zero) on a copy of the model; `measure` gives size, latency, MACs and
accuracy the same way `compressor run` does. `compress` and the CLI's `run` share one engine, `apply_and_recover`.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from compressor.recovery.config import RecoveryConfig
from compressor.recovery.gradual import prune_gradually
from compressor.recovery.recover import recover
from compressor.strategies.registry import StrategyContext
from compressor.strategies.steps import Step, apply_steps, check_fit, parse_steps


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


@dataclass
class Applied:
    """What the engine did: the compressed model, one record per applied step, the export plan, the recovery."""

    model: nn.Module
    steps: list[dict[str, Any]]
    deploy: dict[str, Any]
    recovery: dict[str, Any]


def apply_and_recover(model: nn.Module, steps: Sequence[Step], context: StrategyContext, recovery: RecoveryConfig,
                      *, recovery_split: Split | None = None, teacher: nn.Module | None = None,
                      show_progress: bool = False, announce: Callable[[str, dict[str, Any]], None] | None = None,
                      before_recovery: Callable[[nn.Module], dict[str, Any]] | None = None) -> Applied:
    """The one engine behind `compress` and `compressor run`: the pipeline's steps (in gradual rounds when
    `recovery.prune_steps` > 1), then recovery on `recovery_split` (default: the training data).

    `recovery` must be resolved; `teacher` (the uncompressed model) is used when it distils; `before_recovery(model)`
    measures the model between the strategies and a recovery that changes it (its result is the record's
    `before`)."""
    if recovery.prune_steps > 1:
        model, records, deploy, record = prune_gradually(model, steps, context, recovery, teacher=teacher,
                                                         show_progress=show_progress, announce=announce)
        return Applied(model, records, deploy, record)
    model, records, deploy = apply_steps(model, steps, context, announce)
    before = before_recovery(model) if before_recovery is not None and recovery.does_anything else None
    record = recover(model, recovery_split if recovery_split is not None else context.train, context.input_size,
                     recovery, show_progress=show_progress, teacher=teacher if recovery.distill else None)
    if before is not None:
        record["before"] = before
    return Applied(model, records, deploy, record)


def compress(model: nn.Module, strategy: str | Sequence[str], *, amount: float | None = None,
             params: Mapping[str, Any] | None = None, train: Iterable[Any] | None = None,
             calib: Iterable[Any] | None = None, example_input: torch.Tensor | None = None,
             recovery: RecoveryConfig | None = None, device: str | torch.device = "auto", seed: int = 0,
             cache_dir: Path | None = None, progress: bool | ProgressCallback = False, inplace: bool = False,
             **recovery_options: Any) -> Compressed:
    """Compress any classifier with a strategy or pipeline (`"blocks+l1+int8"`); the caller's model is untouched.

    `train` and `calib` are iterables of (inputs, labels) batches, e.g. torch DataLoaders; `calib` defaults to
    `train`. `params` maps `key` or `strategy.key` to a value, as `--param` does. What happens after the strategies
    is one `RecoveryConfig` (compressor.recovery.config), given as `recovery=` or as its fields by keyword
    (`finetune_epochs=1, distill=True, prune_steps=3, ...`; keywords override `recovery`). BatchNorm statistics
    are re-estimated after strategies that recommend it unless `bn_recalibrate` says otherwise; the recovery
    recipe fills distillation, BatchNorm freezing and the head re-fit when left None; with `prune_steps` N > 1 the
    targets are reached in N rounds on Zhu & Gupta's cubic schedule, with `finetune_epochs / N` of fine-tuning
    after each. The result's model lives on `device`; `record` holds each step's record and the recovery; `int8`
    carries the export-time plan.
    """
    names = [strategy] if isinstance(strategy, str) else list(strategy)
    steps = parse_steps(names, amount, _params_list(params))
    given = RecoveryConfig.from_mapping({**dataclasses.asdict(recovery or RecoveryConfig()), **recovery_options,
                                         "seed": seed}, "compress()")
    config = given.resolved(steps)
    target = resolve_device(device)
    teacher = copy.deepcopy(model).to(target).eval() if config.distill else None
    work = model if inplace else copy.deepcopy(model)
    work.to(target)
    train_split, calib_split = _split(train, "train"), _split(calib if calib is not None else train, "calib")
    recovery_split = train_split
    if config.refit_head and train is None:
        raise CompressorError("refit_head fits the final layer on training features: pass train=<a loader>")
    if train is None and config.finetune_epochs == 0 and given.bn_recalibrate is None:
        # automatic BatchNorm recalibration without train data: on the calibration data, or not at all
        recovery_split = calib_split
        if calib is None:
            config = dataclasses.replace(config, bn_recalibrate=False)
    in_channels, input_size = _input_shape(example_input, calib_split, train_split, required=False)
    check_fit(steps, work)
    callback = (RichProgress() if progress is True else silent_progress if progress is False else progress)
    data_key = "none" if isinstance(calib_split, MissingData) else split_key(calib_split, "calib")
    context = StrategyContext(train=train_split, calib=calib_split, input_size=input_size, data_key=data_key,
                              seed=seed, device=target, cache_dir=cache_dir or default_cache_dir(),
                              progress=callback)
    torch.manual_seed(seed)
    applied = apply_and_recover(work, steps, context, config, recovery_split=recovery_split, teacher=teacher,
                                show_progress=progress is True)
    work = applied.model.eval()
    plan, choice = None, None
    if "int8" in applied.deploy:
        cpu_model = copy.deepcopy(work).cpu() if target.type != "cpu" else work
        plan, choice = resolve_int8_plan(int8_plan(applied.deploy["int8"], calib_split, seed),
                                         applied.deploy["int8"], cpu_model, in_channels, input_size, calib_split)
    record = {"strategy": "+".join(s.strategy for s in steps), "steps": applied.steps, "recovery": applied.recovery,
              "device": str(target), "input_size": input_size,
              **({"int8_calibration": choice} if choice is not None else {})}
    return Compressed(work, record, applied.deploy, plan)


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
