"""Latency: warm up, then time each call until a minimum count and a minimum duration are both reached."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class TimingPlan:
    """How long to warm up and how much to measure."""

    warmup_runs: int = 5
    warmup_seconds: float = 0.5
    min_runs: int = 20
    min_seconds: float = 1.0
    max_runs: int = 10_000


def sample_latencies(fn: Callable[[], object], plan: TimingPlan = TimingPlan()) -> list[float]:
    """Per-call wall times of `fn` in milliseconds, after warm-up."""
    start = time.perf_counter()
    runs = 0
    while runs < plan.warmup_runs or time.perf_counter() - start < plan.warmup_seconds:
        fn()
        runs += 1
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < plan.max_runs and (len(samples) < plan.min_runs
                                             or time.perf_counter() - start < plan.min_seconds):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def summarize(samples_ms: list[float]) -> dict[str, float]:
    """Median, p90, p99, min, mean and IQR (all ms) and the run count of latency samples."""
    x = np.asarray(samples_ms, dtype=np.float64)
    q1, median, q3, p90, p99 = np.percentile(x, [25, 50, 75, 90, 99])
    return {"median_ms": float(median), "p90_ms": float(p90), "p99_ms": float(p99), "min_ms": float(x.min()),
            "mean_ms": float(x.mean()), "iqr_ms": float(q3 - q1), "runs": int(x.size)}


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to `threads`, restoring it afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_cpu_latency(model: nn.Module, in_channels: int, input_size: int, *, batch_size: int = 1,
                      threads: int | None = None, plan: TimingPlan = TimingPlan()) -> dict[str, float]:
    """Eager PyTorch CPU latency of one forward pass on a random batch, summarized."""
    threads = threads or torch.get_num_threads()
    model = model.eval()
    x = torch.randn(batch_size, in_channels, input_size, input_size)
    with torch_threads(threads), torch.inference_mode():
        samples = sample_latencies(lambda: model(x), plan)
    return {"backend": "torch-cpu", "batch_size": batch_size, "input_size": input_size, "threads": threads,
            **summarize(samples)}
