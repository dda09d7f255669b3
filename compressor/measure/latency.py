"""Latency: warm up, then time every call until a minimum count and a minimum duration are both reached.

Backends: torch eager on CPU, ONNX Runtime on CPU (thread count set, all graph optimizations), and torch on CUDA
timed with CUDA events and synchronization (skipped with a reason when no GPU is present).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

BACKENDS = ("torch", "onnxruntime", "cuda")


@dataclass(frozen=True)
class TimingPlan:
    """How long to warm up and how much to measure."""

    warmup_runs: int = 5
    warmup_seconds: float = 0.5
    min_runs: int = 20
    min_seconds: float = 1.0
    max_runs: int = 10_000


def sample_latencies(fn: Callable[[], object], plan: TimingPlan = TimingPlan(),
                     timer: Callable[[Callable[[], object]], float] | None = None) -> list[float]:
    """Per-call times of `fn` in milliseconds after warm-up; `timer(fn)` overrides host wall-clock timing."""
    timer = timer or _wall_ms
    start = time.perf_counter()
    runs = 0
    while runs < plan.warmup_runs or time.perf_counter() - start < plan.warmup_seconds:
        fn()
        runs += 1
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < plan.max_runs and (len(samples) < plan.min_runs
                                             or time.perf_counter() - start < plan.min_seconds):
        samples.append(timer(fn))
    return samples


def _wall_ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def summarize(samples_ms: list[float]) -> dict[str, float]:
    """Median, p90, p99, min, mean, IQR (all ms), IQR/median and the run count of latency samples."""
    x = np.asarray(samples_ms, dtype=np.float64)
    q1, median, q3, p90, p99 = np.percentile(x, [25, 50, 75, 90, 99])
    return {"median_ms": float(median), "p90_ms": float(p90), "p99_ms": float(p99), "min_ms": float(x.min()),
            "mean_ms": float(x.mean()), "iqr_ms": float(q3 - q1), "iqr_over_median": float((q3 - q1) / median),
            "runs": int(x.size)}


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to `threads`, restoring it afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _result(backend: str, batch_size: int, input_size: int, threads: int | None, samples: list[float],
            plan: TimingPlan, **extra: Any) -> dict[str, Any]:
    return {"backend": backend, "batch_size": batch_size, "input_size": input_size, "threads": threads,
            **summarize(samples), "plan": asdict(plan), **extra, "samples_ms": [round(s, 5) for s in samples]}


def torch_cpu_latency(model: nn.Module, in_channels: int, input_size: int, *, batch_size: int = 1,
                      threads: int | None = None, plan: TimingPlan = TimingPlan()) -> dict[str, Any]:
    """Eager PyTorch CPU latency of one forward pass on a random batch (eval mode, inference_mode)."""
    threads = threads or torch.get_num_threads()
    model = model.eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size)
    with torch_threads(threads), torch.inference_mode():
        samples = sample_latencies(lambda: model(x), plan)
    return _result("torch", batch_size, input_size, threads, samples, plan)


def onnxruntime_session(onnx_path: str | Path, threads: int, *, allow_spinning: bool = True) -> Any:
    """An ONNX Runtime CPU session: `threads` intra-op threads, sequential execution, all graph optimizations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def onnxruntime_latency(onnx_path: str | Path, in_channels: int, input_size: int, *, batch_size: int = 1,
                        threads: int | None = None, plan: TimingPlan = TimingPlan()) -> dict[str, Any]:
    """ONNX Runtime CPU latency of `onnx_path`; session creation and the first run are reported apart."""
    threads = threads or torch.get_num_threads()
    t0 = time.perf_counter()
    session = onnxruntime_session(onnx_path, threads)
    create_ms = (time.perf_counter() - t0) * 1e3
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(
        (batch_size, in_channels, input_size, input_size), dtype=np.float32)}
    first_ms = _wall_ms(lambda: session.run(None, feed))
    samples = sample_latencies(lambda: session.run(None, feed), plan)
    return _result("onnxruntime", batch_size, input_size, threads, samples, plan,
                   cold_start={"session_create_ms": create_ms, "first_run_ms": first_ms}, allow_spinning=True)


def cuda_latency(model: nn.Module, in_channels: int, input_size: int, *, batch_size: int = 1,
                 plan: TimingPlan = TimingPlan()) -> dict[str, Any]:
    """Torch CUDA latency timed with CUDA events around each call, synchronized; skipped without a GPU."""
    if not torch.cuda.is_available():
        return {"backend": "cuda", "batch_size": batch_size, "input_size": input_size,
                "skipped": "no CUDA device: torch.cuda.is_available() is False"}
    import copy

    device = torch.device("cuda")
    gpu_model = copy.deepcopy(model).to(device).eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size, device=device)

    def timed(fn: Callable[[], object]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return float(start.elapsed_time(end))

    def forward() -> None:
        gpu_model(x)

    with torch.inference_mode():
        samples = sample_latencies(lambda: (forward(), torch.cuda.synchronize()), plan, timer=timed)
    return _result("cuda", batch_size, input_size, None, samples, plan, device=torch.cuda.get_device_name(0))


def repeat_spread(medians: list[float]) -> float:
    """Relative spread (max - min) / mean of repeated median latencies of the same model."""
    values = np.asarray(medians, dtype=np.float64)
    return float((values.max() - values.min()) / values.mean())
