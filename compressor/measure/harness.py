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
from compressor.measure.latency import (BACKENDS, CUDA_SKIPPED, TimingPlan, cuda_runner, onnxruntime_runner,
                                        onnxruntime_session, repeat_spread, time_runners, torch_runner)
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
    rounds: int = 4
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
        for name, value in (("--batch-size", self.batch_size), ("--repeats", self.repeats), ("rounds", self.rounds)):
            if value < 1:
                raise CompressorError(f"{name} must be at least 1; got {value}")
        if self.input_size is not None and self.input_size < 1:
            raise CompressorError(f"--input-size must be at least 1; got {self.input_size}")
        if self.threads is not None and self.threads < 1:
            raise CompressorError(f"--threads must be at least 1; got {self.threads}")


def latency_block(models: dict[str, tuple[nn.Module, Path]], in_channels: int, input_size: int,
                  config: MeasureConfig) -> dict[str, dict[str, Any]]:
    """Latency per model and backend; several models are timed in alternating rounds so drift hits all alike.

    With `config.repeats` > 1 the whole measurement is repeated back to back and the spread of the medians is
    recorded (the first repeat's statistics are reported).
    """
    threads = config.threads or torch.get_num_threads()
    results: dict[str, dict[str, Any]] = {name: {} for name in models}
    for backend in config.backends:
        if backend == "cuda" and not torch.cuda.is_available():
            for name in models:
                results[name][backend] = {"backend": "cuda", "batch_size": config.batch_size,
                                          "input_size": input_size, "skipped": CUDA_SKIPPED}
            continue
        repeats = []
        for _ in range(config.repeats):
            runners = {}
            for name, (model, onnx_path) in models.items():
                if backend == "torch":
                    runners[name] = torch_runner(model, in_channels, input_size, config.batch_size)
                elif backend == "onnxruntime":
                    runners[name] = onnxruntime_runner(onnx_path, in_channels, input_size, config.batch_size,
                                                       threads)
                else:
                    runners[name] = cuda_runner(model, in_channels, input_size, config.batch_size)
            repeats.append(time_runners(runners, batch_size=config.batch_size, input_size=input_size,
                                        threads=threads, plan=config.plan, rounds=config.rounds))
        for name in models:
            stats = dict(repeats[0][name])
            if config.repeats > 1:
                stats["repeat_medians_ms"] = [r[name]["median_ms"] for r in repeats]
                stats["repeat_spread"] = repeat_spread(stats["repeat_medians_ms"])
            results[name][backend] = stats
    return results


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
                  artifacts_dir: Path | None = None, latency: bool = True) -> dict[str, Any]:
    """All measurements of `model`: flat summary keys plus `size`, `latency`, `complexity`, `evaluation` blocks.

    Accuracy runs at `input_size` (what the model was trained for) on `split`; latency, MACs and the ONNX export
    use `config.input_size` when given (e.g. 224 for a 224 px deployment). With `latency=False` the caller times
    models itself (`latency_block`, several models interleaved) from the ONNX file named in `size`.
    """
    model = model.eval()
    deploy_size = config.input_size or input_size
    threads = config.threads or torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="compressor-artifacts-") as scratch:
        directory = artifacts_dir or Path(scratch)
        files = write_artifacts(model, directory, in_channels=in_channels, input_size=deploy_size)
        size = artifact_sizes(files, config.compressions)
        if artifacts_dir is None:  # the files vanish with the scratch directory: keep only their names
            for row in size["variants"]:
                row["file"] = Path(row["file"]).name
        onnx_path = files["onnx"][0]
        timings = latency_block({"m": (model, onnx_path)}, in_channels, deploy_size, config)["m"] if latency else {}
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
    result = {**summary, "input_size": input_size, "deploy_input_size": deploy_size,
              "measure_config": {**asdict(config), "threads": threads},
              "size": size, "latency": timings, "complexity": cx, "evaluation": evaluation}
    return with_latency(result, timings)


def with_latency(result: dict[str, Any], timings: dict[str, Any]) -> dict[str, Any]:
    """`result` with its latency block set and the headline `latency_ms` (torch median) filled in."""
    result = {**result, "latency": timings}
    if "median_ms" in timings.get("torch", {}):
        result["latency_ms"] = timings["torch"]["median_ms"]
    return result
