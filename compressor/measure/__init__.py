"""Measurements: pure functions of a model (or a file) that never know which strategy produced it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from compressor.data import Split
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.measure.complexity import dense_macs, parameter_counts, weight_sparsity
from compressor.measure.latency import TimingPlan, torch_cpu_latency
from compressor.measure.size import state_dict_file_size


def measure_model(model: nn.Module, split: Split, *, in_channels: int, input_size: int,
                  split_name: str = "test", threads: int | None = None, plan: TimingPlan = TimingPlan(),
                  scratch_dir: Path | None = None) -> dict[str, Any]:
    """Accuracy on `split`, sparsity, parameter counts, MACs, fp32 state_dict size and CPU latency at batch 1."""
    quality = evaluate(torch_forward(model), split, input_size)
    latency = torch_cpu_latency(model, in_channels, input_size, threads=threads, plan=plan)
    return {
        **{k: quality[k] for k in quality if k != "samples"},
        "split": split_name,
        "samples": quality["samples"],
        **weight_sparsity(model),
        **parameter_counts(model),
        "macs": dense_macs(model, in_channels, input_size),
        "size_bytes": state_dict_file_size(model, scratch_dir),
        "latency_ms": latency["median_ms"],
        "latency": latency,
    }
