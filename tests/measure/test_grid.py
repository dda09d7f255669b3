"""The deployment latency grid: sizes × batches × threads, refusal of sizes a model cannot take, speed-ups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.measure import MeasureConfig, TimingPlan
from compressor.measure.complexity import dense_macs
from compressor.measure.grid import (
    LatencyGrid,
    all_cores,
    check_input_size,
    grid_speedups,
    measure_grid,
    parse_int_list,
    requested_grid,
    speedup_summary,
)
from compressor.measure.harness import Int8Plan
from tests.conftest import TinyNet

FAST = MeasureConfig(backends=("torch", "onnxruntime"), plan=TimingPlan(warmup_runs=1, warmup_seconds=0.0,
                                                                        min_runs=3, min_seconds=0.0), rounds=1)


class FixedSizeNet(nn.Module):
    """Flattens its feature map straight into a Linear: it only runs at the size it was built for."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def test_parse_int_list_and_all() -> None:
    assert parse_int_list("1,8,32", "--batch-sizes") == (1, 8, 32)
    assert parse_int_list("1,all,1", "--thread-counts") == tuple(dict.fromkeys((1, all_cores())))
    for bad in ("0", "1,x", "-2"):
        with pytest.raises(CompressorError, match="--batch-sizes takes comma-separated integers ≥ 1"):
            parse_int_list(bad, "--batch-sizes")


def test_grid_validates_and_defaults_threads_to_one_and_all() -> None:
    assert LatencyGrid(sizes=(224,)).threads == tuple(sorted({1, all_cores()}))
    with pytest.raises(CompressorError, match="--deploy-size values must be integers ≥ 1; got 0"):
        LatencyGrid(sizes=(0,))
    with pytest.raises(CompressorError, match="--batch-sizes values must be integers ≥ 1; got -1"):
        LatencyGrid(sizes=(8,), batch_sizes=(1, -1))


def test_the_requested_grid_covers_training_and_deployment_size_or_is_none() -> None:
    assert requested_grid(32, None, (), ()) is None
    assert requested_grid(32, 224, (), (), default_batch=4) == LatencyGrid(sizes=(32, 224), batch_sizes=(4,))
    assert requested_grid(32, 32, [1, 8], [2]) == LatencyGrid(sizes=(32,), batch_sizes=(1, 8), thread_counts=(2,))


def test_a_model_that_cannot_take_the_size_is_refused_in_one_line() -> None:
    check_input_size(FixedSizeNet(), 1, 8)
    with pytest.raises(CompressorError) as info:
        check_input_size(FixedSizeNet(), 1, 16)
    message = str(info.value)
    assert message.startswith("--deploy-size 16: this model cannot take 16 px inputs") and "\n" not in message
    check_input_size(TinyNet(), 1, 40)  # global pooling: any size


def test_grid_times_every_cell_and_counts_macs_per_size(tmp_path: Path, tiny_net: TinyNet) -> None:
    pruned = TinyNet()
    grid = LatencyGrid(sizes=(8, 16), batch_sizes=(1, 2), thread_counts=(1,))
    out = measure_grid({"baseline": tiny_net, "compressed": pruned}, 1, grid, FAST, tmp_path)
    for role in ("baseline", "compressed"):
        rows = out[role]["rows"]
        assert len(rows) == 2 * 2 * 1 * 2  # sizes × batches × threads × backends
        assert {(r["input_size"], r["batch_size"], r["backend"]) for r in rows} == {
            (s, b, k) for s in (8, 16) for b in (1, 2) for k in ("torch", "onnxruntime")}
        assert all(r["median_ms"] > 0 and r["threads"] == 1 for r in rows)
        assert out[role]["macs"]["16"] == dense_macs(tiny_net, 1, 16) > out[role]["macs"]["8"]
    speedups = grid_speedups(out["baseline"], out["compressed"])
    assert len(speedups) == 8
    first = speedups[0]
    base = next(r["median_ms"] for r in out["baseline"]["rows"] if all(r[k] == first[k] for k in
                                                                       ("input_size", "batch_size", "backend")))
    assert first["speedup"] == pytest.approx(base / first["compressed_ms"]) and first["mac_reduction"] == 1.0


def test_int8_rows_are_compared_with_the_baselines_fp32_onnx_and_carry_kernel_evidence(tmp_path: Path,
                                                                                     tiny_net: TinyNet) -> None:
    calibration = Int8Plan(lambda size: [np.random.default_rng(i).standard_normal((1, 1, size, size),
                                                                                  dtype=np.float32)
                                         for i in range(8)])
    grid = LatencyGrid(sizes=(12,), thread_counts=(1,))
    config = MeasureConfig(backends=("onnxruntime",), plan=FAST.plan, rounds=1)
    out = measure_grid({"baseline": tiny_net, "compressed": TinyNet()}, 1, grid, config, tmp_path,
                       int8={"compressed": calibration})
    assert out["compressed"]["int8_kernels"]["12"]["runs_int8"]
    int8_rows = [r for r in grid_speedups(out["baseline"], out["compressed"]) if r["backend"] == "onnxruntime-int8"]
    assert len(int8_rows) == 1 and int8_rows[0]["baseline_backend"] == "onnxruntime"
    assert set(speedup_summary(grid_speedups(out["baseline"], out["compressed"]), 12)) == {
        "onnxruntime", "onnxruntime-int8"}
