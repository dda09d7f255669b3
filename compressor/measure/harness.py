"""The measurement harness: size, latency, complexity and accuracy of one model, the same way for every model."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compressor.data import Split
from compressor.errors import CompressorError
from compressor.measure.accuracy import classification_metrics, onnx_forward, pack_correct, predict, torch_forward
from compressor.measure.complexity import complexity
from compressor.measure.export import export_onnx, quantize_onnx_int8
from compressor.measure.int8_kernels import int8_kernel_report
from compressor.measure.latency import (
    BACKENDS,
    TimingPlan,
    cuda_runner,
    onnxruntime_runner,
    onnxruntime_session,
    repeat_spread,
    skip_reason,
    time_runners,
    torch_runner,
)
from compressor.measure.processes import time_in_processes
from compressor.measure.size import COMPRESSIONS, artifact_sizes, write_artifacts

ORT_BACKENDS = ("onnxruntime", "onnxruntime-int8")


@dataclass(frozen=True)
class MeasureConfig:
    """What to measure and how: latency backends, batch and input size, threads, timing plan, repeats, and the
    fresh processes ONNX Runtime is timed in (`processes` > 1: compressor.measure.processes)."""

    backends: tuple[str, ...] = ("torch", "onnxruntime")
    batch_size: int = 1
    input_size: int | None = None
    threads: int | None = None
    plan: TimingPlan = TimingPlan()
    repeats: int = 1
    rounds: int = 4
    processes: int = 1
    compressions: tuple[str, ...] = COMPRESSIONS

    def __post_init__(self) -> None:
        unknown_compression = [c for c in self.compressions if c not in COMPRESSIONS]
        if unknown_compression:
            raise CompressorError(f"unknown compression {unknown_compression[0]!r}; choose from: "
                                  f"{', '.join(COMPRESSIONS)}, or none")
        unknown = [b for b in self.backends if b not in BACKENDS]
        if unknown or not self.backends:
            raise CompressorError(f"unknown backend {unknown[0] if unknown else '(none)'!r}; choose from: "
                                  f"{', '.join(BACKENDS)}")
        for name, value in (("--batch-size", self.batch_size), ("--repeats", self.repeats), ("rounds", self.rounds),
                            ("--processes", self.processes)):
            if value < 1:
                raise CompressorError(f"{name} must be at least 1; got {value}")
        if self.input_size is not None and self.input_size < 1:
            raise CompressorError(f"--input-size must be at least 1; got {self.input_size}")
        if self.threads is not None and self.threads < 1:
            raise CompressorError(f"--threads must be at least 1; got {self.threads}")


@dataclass(frozen=True)
class Int8Plan:
    """Quantize the exported model to int8: `calibration(size)` gives training batches at that input size."""

    calibration: Callable[[int], list[np.ndarray]]
    per_channel: bool = True
    method: str = "minmax"  # or entropy, percentile; "auto" must be resolved first (measure.int8_choice)


def latency_block(models: dict[str, tuple[nn.Module, Path, Path | None]], in_channels: int, input_size: int,
                  config: MeasureConfig) -> dict[str, dict[str, Any]]:
    """Latency per model and backend; several models are timed in alternating rounds so drift hits all alike.

    With `config.repeats` > 1 the whole measurement is repeated back to back and the spread of the medians is
    recorded (the first repeat's statistics are reported). With `config.processes` > 1, the ONNX Runtime backends
    are instead timed in that many fresh processes, every model and backend interleaved in each
    (`time_in_processes`): medians of per-process medians, speed-ups comparable process by process.
    """
    threads = config.threads or torch.get_num_threads()
    results: dict[str, dict[str, Any]] = {name: {} for name in models}
    backends = list(config.backends)
    if any(int8 is not None for _, _, int8 in models.values()) and "onnxruntime" in backends:
        backends.append("onnxruntime-int8")
    fresh = config.processes > 1
    ort_files: dict[tuple[str, str], Path] = {}
    for backend in backends:
        reasons = {name: skip_reason(backend, int8_path) for name, (_, _, int8_path) in models.items()}
        skipped = {name: reason for name, reason in reasons.items() if reason is not None}
        for name, reason in skipped.items():
            results[name][backend] = {"backend": backend, "batch_size": config.batch_size, "input_size": input_size,
                                      "skipped": reason}
        timed = [name for name in models if name not in skipped]
        if not timed:
            continue
        if fresh and backend in ORT_BACKENDS:
            for name in timed:
                _, onnx_path, int8_path = models[name]
                ort_files[(name, backend)] = onnx_path if backend == "onnxruntime" else int8_path
            continue
        repeats = []
        for _ in range(config.repeats):
            runners = {}
            for name in timed:
                model, onnx_path, int8_path = models[name]
                if backend == "torch":
                    runners[name] = torch_runner(model, in_channels, input_size, config.batch_size)
                elif backend in ("onnxruntime", "onnxruntime-int8"):
                    path = onnx_path if backend == "onnxruntime" else int8_path
                    runners[name] = onnxruntime_runner(path, in_channels, input_size, config.batch_size, threads,
                                                       backend)
                else:
                    runners[name] = cuda_runner(model, in_channels, input_size, config.batch_size)
            repeats.append(time_runners(runners, batch_size=config.batch_size, input_size=input_size,
                                        threads=threads, plan=config.plan, rounds=config.rounds))
        for name in timed:
            stats = dict(repeats[0][name])
            if config.repeats > 1:
                stats["repeat_medians_ms"] = [r[name]["median_ms"] for r in repeats]
                stats["repeat_spread"] = repeat_spread(stats["repeat_medians_ms"])
            results[name][backend] = stats
    if ort_files:
        timed_apart = time_in_processes(ort_files, in_channels=in_channels, input_size=input_size,
                                        batch_size=config.batch_size, threads=threads, plan=config.plan,
                                        rounds=config.rounds, processes=config.processes)
        for (name, backend), stats in timed_apart.items():
            results[name][backend] = stats
        for name in results:  # keep the backends in the order they were asked for
            results[name] = {b: results[name][b] for b in backends if b in results[name]}
    return results


def _accuracy(model: nn.Module, onnx_files: dict[str, Path], split: Split, input_size: int,
              threads: int) -> dict[str, Any]:
    """Metrics of the torch model and of each ONNX artifact (`onnxruntime`, `onnxruntime-int8`) on `split`."""
    torch_logits, labels = predict(torch_forward(model), split, input_size)
    result: dict[str, Any] = {"samples": int(len(labels)), "torch": classification_metrics(torch_logits, labels),
                              "correct": {"torch": pack_correct(torch_logits, labels)}}
    for backend, path in onnx_files.items():
        logits, _ = predict(onnx_forward(onnxruntime_session(path, threads)), split, input_size)
        result["correct"][backend] = pack_correct(logits, labels)
        result[backend] = {**classification_metrics(logits, labels),
                           "max_abs_logit_diff_vs_torch": float(np.abs(logits - torch_logits).max()),
                           "top1_agreement_with_torch": float((logits.argmax(1) == torch_logits.argmax(1)).mean())}
    return result


def measure_model(model: nn.Module, *, in_channels: int, input_size: int, split: Split | None = None,
                  split_name: str = "test", config: MeasureConfig = MeasureConfig(),
                  artifacts_dir: Path | None = None, latency: bool = True,
                  int8: Int8Plan | None = None) -> dict[str, Any]:
    """All measurements of `model`: flat summary keys plus `size`, `latency`, `complexity`, `evaluation` blocks.

    Accuracy runs at `input_size` (what the model was trained for) on `split`; latency, MACs and the ONNX export
    use `config.input_size` when given (e.g. 224 for a 224 px deployment). With `latency=False` the caller times
    models itself (`latency_block`, several models interleaved) from the ONNX files named in `size`. With `int8`,
    the ONNX export is quantized and the headline metrics and deployable file are those of the int8 artifact.
    """
    model = model.eval()
    deploy_size = config.input_size or input_size
    threads = config.threads or torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="compressor-artifacts-") as scratch:
        directory = artifacts_dir or Path(scratch)
        files = write_artifacts(model, directory, in_channels=in_channels, input_size=deploy_size)
        if int8 is not None:
            files["onnx-int8"] = (quantize_onnx_int8(files["onnx"][0], directory / "model.int8.onnx",
                                                     int8.calibration(deploy_size), per_channel=int8.per_channel,
                                                     method=int8.method),
                                  False)
        size = artifact_sizes(files, config.compressions, deploy_variant="onnx-int8" if int8 else None)
        if artifacts_dir is None:  # the files vanish with the scratch directory: keep only their names
            for row in size["variants"]:
                row["file"] = Path(row["file"]).name
        onnx_path = files["onnx"][0]
        int8_path = files["onnx-int8"][0] if int8 is not None else None
        timings = (latency_block({"m": (model, onnx_path, int8_path)}, in_channels, deploy_size, config)["m"]
                   if latency else {})
        # which kernels the deployed int8 graph runs (a QDQ graph can leave attention or GELU in float): op counts of
        # ONNX Runtime's optimized graph and the profiled share of time in integer kernels
        kernels = (int8_kernel_report(int8_path, (1, in_channels, deploy_size, deploy_size), threads=threads)
                   if int8_path is not None else None)
        if split is not None:
            eval_files = {"onnxruntime": onnx_path}
            if int8_path is not None:
                eval_files["onnxruntime-int8"] = int8_path
            if deploy_size != input_size:
                eval_dir = Path(scratch) / "eval"
                eval_files["onnxruntime"] = export_onnx(model, eval_dir / "model.onnx", in_channels, input_size)
                if int8 is not None:
                    eval_files["onnxruntime-int8"] = quantize_onnx_int8(
                        eval_files["onnxruntime"], eval_dir / "model.int8.onnx", int8.calibration(input_size),
                        per_channel=int8.per_channel, method=int8.method)
            evaluation = {"split": split_name, **_accuracy(model, eval_files, split, input_size, threads)}
        else:
            evaluation = {"skipped": "no dataset: the model was built, not trained (pass --model to measure accuracy)"}
    cx = complexity(model, in_channels, deploy_size)
    summary: dict[str, Any] = {}
    deployed = "onnxruntime-int8" if int8 is not None else "torch"
    if deployed in evaluation:
        summary.update({k: v for k, v in evaluation[deployed].items() if not k.endswith("_vs_torch")})
        summary.update({"split": split_name, "samples": evaluation["samples"],
                        "correct": evaluation["correct"][deployed]})
        if int8 is not None:
            summary["accuracy_fp32"] = evaluation["torch"]["accuracy"]
    summary["metrics_from"] = "int8 ONNX model (ONNX Runtime)" if int8 is not None else "fp32 torch model"
    summary.update({k: cx[k] for k in ("sparsity", "sparsity_all", "params_total", "params_nonzero", "macs",
                                       "macs_sparse")})
    summary["size_bytes"] = next(r["bytes"] for r in size["variants"] if r["variant"] == "fp32")
    summary["deployable_bytes"] = size["deployable_bytes"]
    result = {**summary, "input_size": input_size, "deploy_input_size": deploy_size,
              "measure_config": {**asdict(config), "threads": threads},
              "size": size, "latency": timings, "complexity": cx, "evaluation": evaluation}
    if kernels is not None:
        result["int8_kernels"] = kernels
    return with_latency(result, timings)


def with_latency(result: dict[str, Any], timings: dict[str, Any]) -> dict[str, Any]:
    """`result` with its latency block set and the headline `latency_ms` (torch median) filled in."""
    result = {**result, "latency": timings}
    if "median_ms" in timings.get("torch", {}):
        result["latency_ms"] = timings["torch"]["median_ms"]
    return result
