"""Fresh-process timing: each process times every model interleaved; medians of medians, per-process ratios."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from torch import nn

from compressor.measure import MeasureConfig, TimingPlan
from compressor.measure.export import export_onnx
from compressor.measure.grid import grid_speedups
from compressor.measure.harness import latency_block
from compressor.measure.processes import merge, speedup, spread, time_in_processes

QUICK = TimingPlan(warmup_runs=2, warmup_seconds=0.0, min_runs=5, min_seconds=0.0)


def _stats(median: float, samples: list[float], under_load: bool | None = False) -> dict:
    return {"backend": "onnxruntime", "median_ms": median, "samples_ms": samples,
            "load": {"checked": under_load is not None, "under_load": under_load, "other_cores": 0.0}}


def test_merge_takes_the_median_of_process_medians_and_keeps_each() -> None:
    merged = merge([_stats(1.0, [1.0, 1.0]), _stats(3.0, [3.0, 3.0]), _stats(1.2, [1.2, 1.2])], [0.2, 0.3, 0.2])
    assert merged["median_ms"] == 1.2 and merged["process_medians_ms"] == [1.0, 3.0, 1.2]
    assert merged["process_spread"] == pytest.approx((3.0 - 1.0) / 1.2)
    assert merged["runs"] == 6 and merged["processes"] == 3 and merged["machine_reference_ms"] == [0.2, 0.3, 0.2]
    assert merged["load"]["under_load"] is False


def test_one_loaded_process_marks_the_merged_timing_under_load() -> None:
    assert merge([_stats(1.0, [1.0]), _stats(1.0, [1.0], True)], [0.2, 0.2])["load"]["under_load"] is True
    assert merge([_stats(1.0, [1.0]), _stats(1.0, [1.0], None)], [0.2, 0.2])["load"]["under_load"] is None


def test_speedup_is_the_median_of_per_process_ratios_when_timed_together() -> None:
    # the machine doubled its speed between processes: each process's own ratio is 2, the medians' ratio is not
    base = {"median_ms": 10.0, "process_medians_ms": [20.0, 10.0, 10.0]}
    new = {"median_ms": 5.0, "process_medians_ms": [10.0, 5.0, 2.5]}
    assert speedup(base, new) == 2.0
    assert speedup({"median_ms": 10.0}, {"median_ms": 4.0}) == 2.5
    assert spread([1.0, 1.0]) == 0.0


def test_grid_speedups_pair_the_processes(tmp_path: Path) -> None:
    row = {"input_size": 32, "batch_size": 1, "threads": 1, "backend": "onnxruntime"}
    baseline = {"macs": {"32": 4.0}, "rows": [{**row, "median_ms": 12.0, "process_medians_ms": [20.0, 12.0, 12.0]}]}
    compressed = {"macs": {"32": 1.0}, "rows": [{**row, "median_ms": 6.0, "process_medians_ms": [10.0, 6.0, 3.0]}]}
    (only,) = grid_speedups(baseline, compressed)
    assert only["speedup"] == 2.0 and only["mac_reduction"] == 4.0


def _tiny_onnx(path: Path, width: int) -> Path:
    model = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(width, 3)).eval()
    return export_onnx(model, path, 1, 16)


def test_every_process_times_every_file(tmp_path: Path) -> None:
    files = {("small", "onnxruntime"): _tiny_onnx(tmp_path / "s.onnx", 4),
             ("wide", "onnxruntime"): _tiny_onnx(tmp_path / "w.onnx", 64)}
    timed = time_in_processes(files, in_channels=1, input_size=16, batch_size=1, threads=1, plan=QUICK, rounds=2,
                              processes=2)
    assert set(timed) == set(files)
    for stats in timed.values():
        assert stats["processes"] == 2 and len(stats["process_medians_ms"]) == 2
        assert stats["median_ms"] == pytest.approx(float(np.median(stats["process_medians_ms"])))
        assert stats["runs"] >= 2 * 5 and all(r > 0 for r in stats["machine_reference_ms"])
        assert stats["load"]["checked"] in (True, False) and stats["backend"] == "onnxruntime"


def test_latency_block_times_onnxruntime_in_fresh_processes_and_torch_here(tmp_path: Path,
                                                                           tiny_net: nn.Module) -> None:
    onnx_path = export_onnx(tiny_net, tmp_path / "m.onnx", 1, 8)
    config = MeasureConfig(backends=("torch", "onnxruntime"), threads=1, plan=QUICK, processes=2)
    result = latency_block({"m": (tiny_net, onnx_path, None)}, 1, 8, config)["m"]
    assert list(result) == ["torch", "onnxruntime"]
    assert result["onnxruntime"]["processes"] == 2 and "processes" not in result["torch"]
