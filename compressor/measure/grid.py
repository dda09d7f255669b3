"""Latency at deployment conditions: every input size × batch size × thread count, and speed-ups between models.

Accuracy is a property of the size a model was trained at; speed is a property of the size it is deployed at
(224 px for the models this framework exists for, where per-call overhead no longer hides the work). The grid
times each model at each size from its own ONNX export (and int8 export when planned), models interleaved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compressor._util.device import all_cores
from compressor.errors import CompressorError
from compressor.measure.complexity import dense_macs
from compressor.measure.export import export_onnx, quantize_onnx_int8
from compressor.measure.harness import Int8Plan, MeasureConfig, latency_block
from compressor.measure.int8_kernels import int8_kernel_report
from compressor.measure.processes import speedup

STAT_KEYS = ("median_ms", "p90_ms", "p99_ms", "min_ms", "iqr_ms", "runs", "process_medians_ms", "process_spread")


@dataclass(frozen=True)
class LatencyGrid:
    """Input sizes, batch sizes and thread counts to time every backend at (threads empty: 1 and all cores)."""

    sizes: tuple[int, ...]
    batch_sizes: tuple[int, ...] = (1,)
    thread_counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name, values in (("--deploy-size", self.sizes), ("--batch-sizes", self.batch_sizes),
                             ("--thread-counts", self.thread_counts)):
            bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 1]
            if bad:
                raise CompressorError(f"{name} values must be integers ≥ 1; got {bad[0]!r}")
        if not self.sizes or not self.batch_sizes:
            raise CompressorError("a latency grid needs at least one input size and one batch size")

    @property
    def threads(self) -> tuple[int, ...]:
        """The thread counts to time at, in increasing order."""
        return tuple(sorted(set(self.thread_counts or (1, all_cores()))))


def requested_grid(trained_size: int, deploy_size: int | None, batch_sizes: Sequence[int],
                   thread_counts: Sequence[int], default_batch: int = 1) -> LatencyGrid | None:
    """The grid the options ask for (the training size and the deployment size, each batch size and thread
    count), or None when none of them was given."""
    if deploy_size is None and not batch_sizes and not thread_counts:
        return None
    return LatencyGrid(sizes=tuple(dict.fromkeys((trained_size, deploy_size or trained_size))),
                       batch_sizes=tuple(batch_sizes) or (default_batch,), thread_counts=tuple(thread_counts))


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    """`1,8,32` → (1, 8, 32); `all` stands for every core; anything else is a one-line usage error."""
    values = []
    for piece in (p.strip() for p in text.split(",")):
        if piece == "all":
            values.append(all_cores())
            continue
        try:
            value = int(piece)
        except ValueError:
            raise CompressorError(f"{option} takes comma-separated integers ≥ 1; got {piece!r} in {text!r}") from None
        if value < 1:
            raise CompressorError(f"{option} takes comma-separated integers ≥ 1; got {value} in {text!r}")
        values.append(value)
    return tuple(dict.fromkeys(values))


def check_input_size(model: nn.Module, in_channels: int, size: int, option: str = "--deploy-size") -> None:
    """Fail in one line unless `model` runs on `size` px images (fully convolutional models do)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(1, in_channels, size, size, device=device))
    except (RuntimeError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0][:160]
        raise CompressorError(f"{option} {size}: this model cannot take {size} px inputs ({reason}); only models "
                              "that pool globally before the classifier accept another size") from None
    finally:
        model.train(was_training)


def measure_grid(models: dict[str, nn.Module], in_channels: int, grid: LatencyGrid, config: MeasureConfig,
                 workdir: Path, int8: dict[str, Int8Plan] | None = None) -> dict[str, dict[str, Any]]:
    """Per model: MACs per size, latency rows (size × batch × threads × backend) and int8 kernel evidence."""
    int8 = int8 or {}
    out: dict[str, dict[str, Any]] = {role: {"sizes": list(grid.sizes), "batch_sizes": list(grid.batch_sizes),
                                             "thread_counts": list(grid.threads), "macs": {}, "rows": [],
                                             "int8_kernels": {}} for role in models}
    for size in grid.sizes:
        files: dict[str, tuple[nn.Module, Path, Path | None]] = {}
        for role, model in models.items():
            check_input_size(model, in_channels, size)
            onnx_path = export_onnx(model, workdir / f"{role}-{size}px.onnx", in_channels, size)
            int8_path = None
            if role in int8:
                plan = int8[role]
                int8_path = quantize_onnx_int8(onnx_path, workdir / f"{role}-{size}px.int8.onnx",
                                               plan.calibration(size), per_channel=plan.per_channel,
                                               method=plan.method)
                out[role]["int8_kernels"][str(size)] = int8_kernel_report(int8_path, (1, in_channels, size, size),
                                                                          threads=grid.threads[-1])
            files[role] = (model, onnx_path, int8_path)
            out[role]["macs"][str(size)] = dense_macs(model, in_channels, size)
        for batch in grid.batch_sizes:
            for threads in grid.threads:
                step = dataclasses.replace(config, batch_size=batch, threads=threads, repeats=1)
                timings = latency_block(files, in_channels, size, step)
                for role in models:
                    for backend, stats in timings[role].items():
                        row = {"input_size": size, "batch_size": batch, "threads": threads, "backend": backend}
                        row.update({k: stats[k] for k in STAT_KEYS if k in stats} if "skipped" not in stats
                                   else {"skipped": stats["skipped"]})
                        out[role]["rows"].append(row)
    return out


REFERENCE_BACKEND = {"onnxruntime-int8": "onnxruntime"}


def grid_speedups(baseline: dict[str, Any], compressed: dict[str, Any]) -> list[dict[str, Any]]:
    """Baseline median / compressed median for every grid cell both timed (int8 against the baseline's fp32 ONNX
    Runtime; the median of per-process ratios when timed in fresh processes), beside the MAC reduction."""
    timed = {(r["input_size"], r["batch_size"], r["threads"], r["backend"]): r
             for r in baseline["rows"] if "median_ms" in r}
    rows = []
    for row in compressed["rows"]:
        reference = REFERENCE_BACKEND.get(row["backend"], row["backend"])
        base = timed.get((row["input_size"], row["batch_size"], row["threads"], reference))
        if "median_ms" not in row or base is None:
            continue
        size = str(row["input_size"])
        macs_b, macs_c = baseline["macs"].get(size), compressed["macs"].get(size)
        rows.append({"input_size": row["input_size"], "batch_size": row["batch_size"], "threads": row["threads"],
                     "backend": row["backend"], "baseline_backend": reference, "baseline_ms": base["median_ms"],
                     "compressed_ms": row["median_ms"], "speedup": speedup(base, row),
                     "mac_reduction": macs_b / macs_c if macs_b and macs_c else None})
    return rows


def speedup_summary(rows: Sequence[dict[str, Any]], size: int) -> dict[str, float]:
    """Batch-1 speed-up per backend at `size` with all cores (the most threads timed)."""
    at_size = [r for r in rows if r["input_size"] == size and r["batch_size"] == 1]
    if not at_size:
        return {}
    most = max(r["threads"] for r in at_size)
    return {r["backend"]: r["speedup"] for r in at_size if r["threads"] == most}
