"""bench(): measure one model (a checkpoint, or a freshly built architecture) with the full harness."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from compressor._util.environment import environment
from compressor.errors import CompressorError
from compressor.measure import MeasureConfig, measure_model
from compressor.measure.grid import measure_grid, requested_grid
from compressor.models.checkpoint import load_checkpoint, load_dataset_for
from compressor.models.zoo import build_model, get_arch

BENCH_SCHEMA = "compressor.bench/1"
DEFAULT_ARCH_INPUT = 224


def bench(*, model: Path | None = None, arch: str | None = None, num_classes: int = 1000, in_channels: int = 3,
          dataset: str | None = None, data_dir: Path | None = None, cache_dir: Path | None = None,
          config: MeasureConfig = MeasureConfig(), artifacts_dir: Path | None = None,
          command: str | None = None, batch_sizes: tuple[int, ...] = (),
          thread_counts: tuple[int, ...] = ()) -> dict[str, Any]:
    """Measure a checkpoint (accuracy on its dataset's test split) or a fresh `arch` (no accuracy); with
    `batch_sizes` or `thread_counts`, also time it over that grid (at the training and the --input-size size)."""
    if model is not None:
        checkpoint = load_checkpoint(model)
        spec = checkpoint.spec
        data = load_dataset_for(spec, dataset, data_dir=data_dir, cache_dir=cache_dir)
        the_model, channels, size, split = checkpoint.model, spec.in_channels, spec.input_size, data.test
        described = {"checkpoint": str(model), "arch": spec.arch, "dataset": spec.dataset,
                     "num_classes": spec.num_classes, "in_channels": spec.in_channels,
                     "input_size": spec.input_size}
    else:
        assert arch is not None
        if num_classes < 2 or in_channels < 1:
            raise CompressorError(f"--num-classes must be ≥ 2 and --in-channels ≥ 1; got {num_classes}, {in_channels}")
        info = get_arch(arch)
        size = config.input_size or DEFAULT_ARCH_INPUT
        if size < info.min_input_size:
            raise CompressorError(f"--input-size {size} is too small for {arch}; it needs at least "
                                  f"{info.min_input_size}")
        the_model, channels, split = build_model(arch, num_classes, in_channels), in_channels, None
        described = {"checkpoint": None, "arch": arch, "dataset": None, "num_classes": num_classes,
                     "in_channels": in_channels, "input_size": size, "weights": "random initialization"}
    measurements = measure_model(the_model, in_channels=channels, input_size=size, split=split, config=config,
                                 artifacts_dir=artifacts_dir)
    if batch_sizes or thread_counts:  # --input-size alone sets the headline size, not a grid
        grid = requested_grid(size, config.input_size, batch_sizes, thread_counts, config.batch_size)
        with tempfile.TemporaryDirectory(prefix="compressor-bench-grid-") as scratch:
            measurements["latency_grid"] = measure_grid({"model": the_model}, channels, grid, config,
                                                        Path(scratch))["model"]
    return {"schema": BENCH_SCHEMA, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": command, "model": described, "environment": environment(), "measurements": measurements}
