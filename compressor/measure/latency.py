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

from compressor._util.timing_gate import timing_alone
from compressor.measure.load import watch_load

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


def onnxruntime_session(onnx_path: str | Path, threads: int, *, allow_spinning: bool = True,
                        optimized_model_path: str | Path | None = None,
                        thread_affinities: list[int] | None = None) -> Any:
    """An ONNX Runtime CPU session: `threads` intra-op threads, sequential execution, all graph optimizations
    (the graph it runs is written to `optimized_model_path` when given; `thread_affinities` pins the threads ORT
    creates, `threads` - 1 of them, to these 1-based logical processors)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if optimized_model_path is not None:
        options.optimized_model_filepath = str(optimized_model_path)
        options.log_severity_level = 3  # the dump warns that NCHWc layouts are machine specific: it is read here
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    if thread_affinities:
        options.add_session_config_entry("session.intra_op_thread_affinities",
                                         ";".join(str(p) for p in thread_affinities))
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


@dataclass
class Runner:
    """One thing to time: a zero-argument call, an optional timer replacing wall-clock, and facts to record."""

    call: Callable[[], object]
    info: dict[str, Any]
    timer: Callable[[Callable[[], object]], float] | None = None


def torch_runner(model: nn.Module, in_channels: int, input_size: int, batch_size: int = 1) -> Runner:
    """Eager PyTorch CPU forward of `model` (eval mode) on a random batch."""
    model = model.eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size)
    return Runner(lambda: model(x), {"backend": "torch"})


def onnxruntime_runner(onnx_path: str | Path, in_channels: int, input_size: int, batch_size: int = 1,
                       threads: int = 1, backend: str = "onnxruntime") -> Runner:
    """ONNX Runtime CPU run of `onnx_path`; session creation and the first run are timed apart (cold start)."""
    t0 = time.perf_counter()
    session = onnxruntime_session(onnx_path, threads)
    create_ms = (time.perf_counter() - t0) * 1e3
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(
        (batch_size, in_channels, input_size, input_size), dtype=np.float32)}
    first_ms = _wall_ms(lambda: session.run(None, feed))
    return Runner(lambda: session.run(None, feed),
                  {"backend": backend, "allow_spinning": True,
                   "cold_start": {"session_create_ms": create_ms, "first_run_ms": first_ms}})


def cuda_runner(model: nn.Module, in_channels: int, input_size: int, batch_size: int = 1) -> Runner:
    """Torch CUDA forward timed by CUDA events and synchronization (needs a GPU: see `skip_reason`)."""
    import copy

    device = torch.device("cuda")
    gpu_model = copy.deepcopy(model).to(device).eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size, device=device)

    def call() -> None:
        gpu_model(x)
        torch.cuda.synchronize()

    def timed(fn: Callable[[], object]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        gpu_model(x)
        end.record()
        torch.cuda.synchronize()
        return float(start.elapsed_time(end))

    return Runner(call, {"backend": "cuda", "device": torch.cuda.get_device_name(0)}, timer=timed)


CUDA_SKIPPED = "no CUDA device: torch.cuda.is_available() is False"


def skip_reason(backend: str, int8_artifact: Path | None = None) -> str | None:
    """Why `backend` cannot be timed here (no GPU, or no int8 artifact), or None when it can."""
    if backend == "cuda" and not torch.cuda.is_available():
        return CUDA_SKIPPED
    if backend == "onnxruntime-int8" and int8_artifact is None:
        return "no int8 artifact"
    return None


def time_runners(runners: dict[str, Runner], *, batch_size: int, input_size: int, threads: int,
                 plan: TimingPlan = TimingPlan(), rounds: int = 1) -> dict[str, dict[str, Any]]:
    """Warm up every runner, then time them in alternating rounds (A B A B ...) so drift hits all alike.

    Each runner gets `plan` in total, split evenly over the rounds; its stats come from all its samples. Each
    result carries `load`: the CPU other processes used during the timing (`compressor.measure.load`). In a
    `--timing serial` sweep the timing waits until no other cell computes (`compressor._util.timing_gate`).
    """
    chunk = TimingPlan(warmup_runs=0, warmup_seconds=0.0, min_runs=-(-plan.min_runs // rounds),
                       min_seconds=plan.min_seconds / rounds, max_runs=max(1, plan.max_runs // rounds))
    warm = TimingPlan(warmup_runs=plan.warmup_runs, warmup_seconds=plan.warmup_seconds, min_runs=0,
                      min_seconds=0.0)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    with timing_alone(), torch_threads(threads), torch.inference_mode(), watch_load() as load:
        for runner in runners.values():
            sample_latencies(runner.call, warm)
        for _ in range(rounds):
            for name, runner in runners.items():
                samples[name].extend(sample_latencies(runner.call, chunk, timer=runner.timer))
    return {name: {**runner.info, "batch_size": batch_size, "input_size": input_size,
                   "threads": threads if runner.info["backend"] != "cuda" else None, **summarize(samples[name]),
                   "plan": asdict(plan), "rounds": rounds, "samples_ms": [round(s, 5) for s in samples[name]],
                   "load": dict(load)}
            for name, runner in runners.items()}


def torch_cpu_latency(model: nn.Module, in_channels: int, input_size: int, *, batch_size: int = 1,
                      threads: int | None = None, plan: TimingPlan = TimingPlan()) -> dict[str, Any]:
    """Eager PyTorch CPU latency of one model, summarized."""
    threads = threads or torch.get_num_threads()
    runner = torch_runner(model, in_channels, input_size, batch_size)
    return time_runners({"m": runner}, batch_size=batch_size, input_size=input_size, threads=threads, plan=plan)["m"]


def onnxruntime_latency(onnx_path: str | Path, in_channels: int, input_size: int, *, batch_size: int = 1,
                        threads: int | None = None, plan: TimingPlan = TimingPlan()) -> dict[str, Any]:
    """ONNX Runtime CPU latency of one exported model, summarized, with its cold start."""
    threads = threads or torch.get_num_threads()
    runner = onnxruntime_runner(onnx_path, in_channels, input_size, batch_size, threads)
    return time_runners({"m": runner}, batch_size=batch_size, input_size=input_size, threads=threads, plan=plan)["m"]


def cuda_latency(model: nn.Module, in_channels: int, input_size: int, *, batch_size: int = 1,
                 plan: TimingPlan = TimingPlan()) -> dict[str, Any]:
    """Torch CUDA latency of one model, or a record saying why it was skipped."""
    reason = skip_reason("cuda")
    if reason is not None:
        return {"backend": "cuda", "batch_size": batch_size, "input_size": input_size, "skipped": reason}
    runner = cuda_runner(model, in_channels, input_size, batch_size)
    return time_runners({"m": runner}, batch_size=batch_size, input_size=input_size, threads=1, plan=plan)["m"]


def repeat_spread(medians: list[float]) -> float:
    """Relative spread (max - min) / mean of repeated median latencies of the same model."""
    values = np.asarray(medians, dtype=np.float64)
    return float((values.max() - values.min()) / values.mean())
