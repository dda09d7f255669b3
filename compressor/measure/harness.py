"""The measurement harness: size, latency, complexity and accuracy of one model, the same way for every model."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compressor.data import Split
from compressor.errors import CompressorError
from compressor.export import export_onnx
from compressor.measure.accuracy import classification_metrics, onnx_forward, predict, torch_forward
from compressor.measure.complexity import complexity
from compressor.measure.latency import (BACKENDS, TimingPlan, cuda_latency, onnxruntime_latency,
                                        onnxruntime_session, repeat_spread, torch_cpu_latency)
from compressor.measure.size import COMPRESSIONS, artifact_sizes, write_artifacts


@dataclass(frozen=True)
class MeasureConfig:
    """What to measure and how: latency backends, batch and input size, threads, timing plan, repeats."""

    backends: tuple[str, ...] = ("torch", "onnxruntime")
    batch_size: int = 1
    input_size: int | None = None
    threads: int | None = None
    plan: TimingPlan = TimingPlan()
    repeats: int = 1
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
        for name, value in (("--batch-size", self.batch_size), ("--repeats", self.repeats)):
            if value < 1:
                raise CompressorError(f"{name} must be at least 1; got {value}")
        if self.input_size is not None and self.input_size < 1:
            raise CompressorError(f"--input-size must be at least 1; got {self.input_size}")
        if self.threads is not None and self.threads < 1:
            raise CompressorError(f"--threads must be at least 1; got {self.threads}")


def _latency(backend: str, model: nn.Module, onnx_path: Path, in_channels: int, size: int,
             config: MeasureConfig) -> dict[str, Any]:
    runs = []
    for _ in range(config.repeats):
        if backend == "torch":
            runs.append(torch_cpu_latency(model, in_channels, size, batch_size=config.batch_size,
                                          threads=config.threads, plan=config.plan))
        elif backend == "onnxruntime":
            runs.append(onnxruntime_latency(onnx_path, in_channels, size, batch_size=config.batch_size,
                                            threads=config.threads, plan=config.plan))
        else:
            runs.append(cuda_latency(model, in_channels, size, batch_size=config.batch_size, plan=config.plan))
        if "skipped" in runs[-1]:
            return runs[-1]
    result = dict(runs[0])
    if config.repeats > 1:
        medians = [r["median_ms"] for r in runs]
        result["repeat_medians_ms"] = medians
        result["repeat_spread"] = repeat_spread(medians)
    return result


def _accuracy(model: nn.Module, onnx_path: Path, split: Split, input_size: int, threads: int) -> dict[str, Any]:
    torch_logits, labels = predict(torch_forward(model), split, input_size)
    onnx_logits, _ = predict(onnx_forward(onnxruntime_session(onnx_path, threads)), split, input_size)
    return {
        "samples": int(len(labels)),
        "torch": classification_metrics(torch_logits, labels),
        "onnxruntime": {**classification_metrics(onnx_logits, labels),
                        "max_abs_logit_diff_vs_torch": float(np.abs(onnx_logits - torch_logits).max()),
                        "top1_agreement_with_torch": float((onnx_logits.argmax(1) == torch_logits.argmax(1)).mean())},
    }


def measure_model(model: nn.Module, *, in_channels: int, input_size: int, split: Split | None = None,
                  split_name: str = "test", config: MeasureConfig = MeasureConfig(),
                  artifacts_dir: Path | None = None) -> dict[str, Any]:
    """All measurements of `model`: flat summary keys plus `size`, `latency`, `complexity`, `evaluation` blocks.

    Accuracy runs at `input_size` (what the model was trained for) on `split`; latency, MACs and the ONNX export
    use `config.input_size` when given (e.g. 224 for a 224 px deployment).
    """
    model = model.eval()
    deploy_size = config.input_size or input_size
    threads = config.threads or torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="compressor-artifacts-") as scratch:
        directory = artifacts_dir or Path(scratch)
        files = write_artifacts(model, directory, in_channels=in_channels, input_size=deploy_size)
        size = artifact_sizes(files, config.compressions)
        onnx_path = files["onnx"][0]
        latency = {b: _latency(b, model, onnx_path, in_channels, deploy_size, config) for b in config.backends}
        if split is not None:
            eval_onnx = onnx_path if deploy_size == input_size else export_onnx(
                model, Path(scratch) / "eval" / "model.onnx", in_channels, input_size)
            evaluation = {"split": split_name, **_accuracy(model, eval_onnx, split, input_size, threads)}
        else:
            evaluation = {"skipped": "no dataset: the model was built, not trained (pass --model to measure accuracy)"}
    cx = complexity(model, in_channels, deploy_size)
    summary: dict[str, Any] = {}
    if "torch" in evaluation:
        summary.update(evaluation["torch"])
        summary.update({"split": split_name, "samples": evaluation["samples"]})
    summary.update({k: cx[k] for k in ("sparsity", "sparsity_all", "params_total", "params_nonzero", "macs",
                                       "macs_sparse")})
    summary["size_bytes"] = next(r["bytes"] for r in size["variants"] if r["variant"] == "fp32")
    summary["deployable_bytes"] = size["deployable_bytes"]
    if "torch" in latency and "median_ms" in latency["torch"]:
        summary["latency_ms"] = latency["torch"]["median_ms"]
    return {**summary, "input_size": input_size, "deploy_input_size": deploy_size,
            "measure_config": {**asdict(config), "threads": threads},
            "size": size, "latency": latency, "complexity": cx, "evaluation": evaluation}
