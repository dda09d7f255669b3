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


def _slim(model: torch.nn.Module, digits: Dataset, input_size: int, tmp_path: Path, arch: str, **params) -> dict:
    """Prune `model` with channels, then check it runs, reloads from a checkpoint and exports with the same output."""
    torch.manual_seed(0)
    context = StrategyContext.for_dataset(digits, input_size=input_size)
    before = parameter_counts(model)["params_total"]
    record = build_strategy("channels", {"amount": 0.3, **params}).apply(model, context).record
    assert parameter_counts(model)["params_total"] < 0.9 * before
    x = torch.randn(2, 3, input_size, input_size)
    with torch.no_grad():
        expected = model(x)
    spec = ModelSpec(arch, 10, 3, input_size, "digits", digits.info.classes, digits.info.mean, digits.info.std)
    save_checkpoint(Checkpoint(spec, model), tmp_path / "model.pt")
    with torch.no_grad():
        torch.testing.assert_close(load_checkpoint(tmp_path / "model.pt").model.eval()(x), expected)
    return record


@pytest.mark.parametrize("arch", ["torchvision:mobilenet_v3_small", "torchvision:efficientnet_b0"])
def test_depthwise_convs_are_pruned_with_their_producers_and_rounded(arch: str, digits: Dataset,
                                                                   tmp_path: Path) -> None:
    model = build_model(arch, 10, 3).eval()
    record = _slim(model, digits, 32, tmp_path, arch, round_to=8)
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise), "still depthwise"
    narrow = [name for name in record["unrounded_layers"] if record["layers"][name]["channels_before"] < 8]
    assert record["round_to"] == 8 and record["unrounded_layers"] == narrow, "only layers born narrower than 8"


def test_attention_heads_keep_their_count_and_narrow_alike(digits: Dataset, tmp_path: Path) -> None:
    pytest.importorskip("timm")
    from compressor.strategies.channels import attention_modules

    arch = "timm:vit_tiny_patch16_224"
    model = build_model(arch, 10, 3).eval()
    heads = [(m.num_heads, m.head_dim) for m in attention_modules(model)]
    record = _slim(model, digits, 224, tmp_path, arch, round_to=1)
    after = [(m.num_heads, m.head_dim, m.qkv.out_features) for m in attention_modules(model)]
    assert len(after) == len(heads) == 12
    assert all(n == n0 and dim < dim0 and out == 3 * n * dim for (n, dim, out), (n0, dim0) in zip(after, heads))
    assert any(name.endswith("mlp.fc1") and layer["channels_after"] < layer["channels_before"]
               for name, layer in record["layers"].items()), "the MLP widths shrink too"
