"""Fixtures for the latency suites: trained digits baselines and their L1-pruned twins, with their ONNX exports.

Environment: COMPRESSOR_BENCH_SMOKE=1 trains for one epoch into a temporary cache (for `make test`);
COMPRESSOR_BENCH_INPUT=N times at N px instead of the model's own input size (e.g. 224).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from compressor.baseline import BaselineRequest, get_baseline
from compressor.data import Dataset, load_dataset
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.measure.complexity import weight_sparsity
from compressor.measure.latency import onnxruntime_session
from compressor.measure.size import write_artifacts
from compressor.registry import StrategyContext, build_strategy

SMOKE = os.environ.get("COMPRESSOR_BENCH_SMOKE") == "1"
ARCHS = ("resnet18", "densenet201")
VARIANTS = ("dense", "l1-0.5")


@dataclass
class BenchModel:
    """A model ready to time: torch module, ONNX Runtime session factory and the facts to attach."""

    model: nn.Module
    onnx_path: Path
    in_channels: int
    input_size: int
    extra_info: dict[str, Any]

    def session(self, threads: int) -> Any:
        """A fresh ONNX Runtime session on the exported model."""
        return onnxruntime_session(self.onnx_path, threads)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="session")
def bench_cache(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    return tmp_path_factory.mktemp("bench-cache") if SMOKE else None


_MODELS: dict[tuple[str, str], BenchModel] = {}


@pytest.fixture(scope="session")
def bench_model(digits: Dataset, bench_cache: Path | None, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`bench_model(arch, variant)`: the cached baseline (or its 50 % global-L1 twin), exported and described."""

    def get(arch: str, variant: str) -> BenchModel:
        if (arch, variant) in _MODELS:
            return _MODELS[(arch, variant)]
        request = BaselineRequest(arch=arch, epochs=1 if SMOKE else None)
        checkpoint, _ = get_baseline(request, digits, cache_dir=bench_cache, show_progress=False)
        model = copy.deepcopy(checkpoint.model)
        if variant == "l1-0.5":
            context = StrategyContext.for_dataset(digits, input_size=checkpoint.spec.input_size)
            build_strategy("l1", {"amount": 0.5}).apply(model, context)
        model.eval()
        trained_size = checkpoint.spec.input_size
        size = int(os.environ.get("COMPRESSOR_BENCH_INPUT", trained_size))
        files = write_artifacts(model, tmp_path_factory.mktemp(f"{arch}-{variant}"),
                                in_channels=checkpoint.spec.in_channels, input_size=size)
        info = {
            "arch": arch, "variant": variant, "input_size": size, "dataset": "digits",
            "accuracy": evaluate(torch_forward(model), digits.test, trained_size)["accuracy"],
            "sparsity": weight_sparsity(model)["sparsity"],
            **{f"size_{name}_bytes": path.stat().st_size for name, (path, _) in files.items()},
        }
        _MODELS[(arch, variant)] = BenchModel(model, files["onnx"][0], checkpoint.spec.in_channels, size, info)
        return _MODELS[(arch, variant)]

    return get
