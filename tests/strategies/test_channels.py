"""channels: a physically smaller network (fewer MACs and parameters) that runs, saves, reloads and exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.measure.complexity import dense_macs, parameter_counts
from compressor.measure.export import export_onnx
from compressor.measure.latency import onnxruntime_session
from compressor.models.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint
from compressor.models.zoo import build_model
from compressor.strategies.registry import StrategyContext, build_strategy


def _prune_and_check(arch: str, digits: Dataset, tmp_path: Path, **params) -> dict:
    torch.manual_seed(0)
    model = build_model(arch, 10, 1).eval()
    with torch.no_grad():  # trained networks have unequal BatchNorm scales; fresh ones are all 1
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
    macs, n_params = dense_macs(model, 1, 32), parameter_counts(model)["params_total"]
    context = StrategyContext.for_dataset(digits, input_size=32)
    record = build_strategy("channels", {"amount": 0.5, **params}).apply(model, context).record
    assert dense_macs(model, 1, 32) < 0.5 * macs and parameter_counts(model)["params_total"] < 0.5 * n_params
    x, _ = next(digits.test.batches(32, 8))
    with torch.no_grad():
        expected = model(x)
    assert expected.shape == (8, 10)
    spec = ModelSpec(arch, 10, 1, 32, "digits", digits.info.classes, digits.info.mean, digits.info.std)
    save_checkpoint(Checkpoint(spec, model), tmp_path / "model.pt")
    with torch.no_grad():
        assert torch.equal(load_checkpoint(tmp_path / "model.pt").model(x), expected)
    export_onnx(model, tmp_path / "model.onnx", 1, 32)
    onnx_out = onnxruntime_session(tmp_path / "model.onnx", 1).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(onnx_out, expected.numpy(), atol=1e-4)
    return record


@pytest.mark.parametrize("importance, scope", [("l1", "uniform"), ("l2", "global"), ("taylor", "uniform"),
                                               ("bn-scale", "global")])
def test_resnet18_shrinks_and_still_runs_saves_reloads_and_exports(digits: Dataset, tmp_path: Path,
                                                                   importance: str, scope: str) -> None:
    record = _prune_and_check("resnet18", digits, tmp_path, importance=importance, scope=scope)
    assert record["channels_after"] < record["channels_before"]


def test_densenet_concatenations_are_pruned_consistently(digits: Dataset, tmp_path: Path) -> None:
    _prune_and_check("densenet169", digits, tmp_path)


@pytest.mark.slow
def test_densenet201_shrinks(digits: Dataset, tmp_path: Path) -> None:
    _prune_and_check("densenet201", digits, tmp_path, importance="taylor")


def test_a_prune_that_removes_nothing_is_an_error(digits: Dataset) -> None:
    model = build_model("resnet18", 10, 1)
    with pytest.raises(CompressorError, match="channels cannot rank channels at amount 0.5: every bn-scale score ties"):
        build_strategy("channels", {"amount": 0.5, "importance": "bn-scale", "scope": "global"}).apply(
            model, StrategyContext.for_dataset(digits, input_size=32))


def test_bad_importance_is_refused() -> None:
    with pytest.raises(CompressorError, match="channels.importance must be one of l1, l2, taylor, bn-scale"):
        build_strategy("channels", {"importance": "random"})
