"""Latency: stats come from the recorded samples; backends record what they ran with; CUDA skips with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compressor.export import export_onnx
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
