"""Latency: stats come from the recorded samples; backends record what they ran with; CUDA skips with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compressor.measure.export import export_onnx
from compressor.measure.latency import TimingPlan, cuda_latency, onnxruntime_latency, repeat_spread, summarize

QUICK = TimingPlan(warmup_runs=2, warmup_seconds=0.0, min_runs=15, min_seconds=0.0)


def test_stats_are_recomputable_from_the_recorded_samples(tmp_path: Path, tiny_net: nn.Module) -> None:
    export_onnx(tiny_net, tmp_path / "model.onnx", 1, 16)
    stats = onnxruntime_latency(tmp_path / "model.onnx", 1, 16, batch_size=4, threads=1, plan=QUICK)
    assert stats["backend"] == "onnxruntime" and stats["threads"] == 1 and stats["batch_size"] == 4
    assert len(stats["samples_ms"]) == stats["runs"] == 15
    again = summarize(stats["samples_ms"])
    for key in ("median_ms", "p90_ms", "p99_ms", "min_ms", "iqr_ms"):
        assert again[key] == pytest.approx(stats[key], abs=1e-4)
    assert stats["cold_start"]["session_create_ms"] > 0 and stats["cold_start"]["first_run_ms"] > 0


def test_iqr_over_median_and_repeat_spread() -> None:
    stats = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert stats["iqr_over_median"] == pytest.approx((4 - 2) / 3)
    assert repeat_spread([10.0, 10.3]) == pytest.approx(0.3 / 10.15)
    assert repeat_spread([5.0, 5.0, 5.0]) == 0.0


def test_cuda_is_skipped_with_a_stated_reason_without_a_gpu(monkeypatch, tiny_net: nn.Module) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = cuda_latency(tiny_net, 1, 16)
    assert "no CUDA device" in result["skipped"] and "median_ms" not in result


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_latency_with_events(tiny_net: nn.Module) -> None:
    result = cuda_latency(tiny_net, 1, 16, plan=QUICK)
    assert result["backend"] == "cuda" and result["runs"] == 15 and np.isfinite(result["median_ms"])


def test_alternating_rounds_spread_drift_over_all_runners() -> None:
    from compressor.measure.latency import Runner, time_runners

    clock = iter(range(10_000))

    def drifting(_fn) -> float:  # noqa: ANN001 - a timer whose readings grow with every call, like thermal drift
        return float(next(clock))

    def medians(rounds: int) -> tuple[float, float]:
        runners = {name: Runner(lambda: None, {"backend": "torch"}, timer=drifting) for name in ("a", "b")}
        plan = TimingPlan(warmup_runs=0, warmup_seconds=0.0, min_runs=8, min_seconds=0.0)
        out = time_runners(runners, batch_size=1, input_size=8, threads=1, plan=plan, rounds=rounds)
        assert out["a"]["runs"] == out["b"]["runs"] == 8 and out["a"]["rounds"] == rounds
        return out["a"]["median_ms"], out["b"]["median_ms"]

    a, b = medians(rounds=1)
    assert b - a == 8  # one after the other: b pays for all the drift
    a, b = medians(rounds=4)
    assert b - a == 2  # alternating: the drift is shared
