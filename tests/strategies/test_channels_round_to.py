"""channels.round_to: every pruned layer keeps a multiple of round_to channels (never 0), and 1 changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch_pruning as tp
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.measure.export import export_onnx
from compressor.measure.latency import onnxruntime_session
from compressor.models.zoo import build_model
from compressor.strategies.registry import StrategyContext, build_strategy


def _model(arch: str = "resnet18", in_channels: int = 1) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(arch, 10, in_channels).eval()
    with torch.no_grad():  # fresh BatchNorm scales are all 1, which ties every bn-scale score
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
    return model


def _counts(model: nn.Module) -> dict[str, int]:
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _prune(digits: Dataset, model: nn.Module, **params) -> dict:
    return build_strategy("channels", params).apply(model, StrategyContext.for_dataset(digits, input_size=32)).record


@pytest.mark.parametrize("scope, amount, round_to", [("uniform", 0.5, 16), ("uniform", 0.7, 16), ("global", 0.5, 8),
                                                     ("global", 0.9, 16)])
def test_pruned_layers_keep_multiples_of_round_to(digits: Dataset, scope: str, amount: float, round_to: int) -> None:
    plain = _model()
    _prune(digits, plain, amount=amount, scope=scope, round_to=1)
    model = _model()
    before = _counts(model)
    record = _prune(digits, model, amount=amount, scope=scope, round_to=round_to)
    after = _counts(model)
    assert all(after[name] % round_to == 0 and after[name] >= round_to for name in after), after
    assert any(after[name] < before[name] for name in after)
    expected = {name: max(k - k % round_to, round_to) for name, k in _counts(plain).items()}
    assert after == expected  # what the unrounded prune keeps, rounded down, but never below round_to
    assert record["round_to"] == round_to and record["unrounded_layers"] == []
    assert record["channel_ratio_removed"] == pytest.approx(1 - sum(after.values()) / sum(before.values()))
    assert record["layers"]["conv1"] == {"channels_before": before["conv1"], "channels_after": after["conv1"]}
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_round_to_1_prunes_exactly_as_before_and_the_default_rounds_to_8(digits: Dataset) -> None:
    old = _model()
    linears = [m for m in old.modules() if isinstance(m, nn.Linear)]
    tp.pruner.MetaPruner(old, torch.zeros(1, 1, 32, 32), importance=tp.importance.GroupMagnitudeImportance(p=1),
                         pruning_ratio=0.5, global_pruning=True, max_pruning_ratio=0.9,
                         ignored_layers=linears[-1:]).step()
    default, rounded_to_1 = _model(), _model()
    assert _prune(digits, default, amount=0.5, scope="global")["round_to"] == 8  # the measured default
    record = _prune(digits, rounded_to_1, amount=0.5, scope="global", round_to=1)
    assert _counts(rounded_to_1) == _counts(old)
    assert any(count % 8 for count in _counts(old).values())  # so rounding would show here
    assert all(count % 8 == 0 for count in _counts(default).values())
    assert record["round_to"] == 1 and record["unrounded_layers"] == []


def test_a_layer_narrower_than_round_to_is_pruned_unrounded_and_none_reaches_zero(digits: Dataset) -> None:
    model = _model()
    record = _prune(digits, model, amount=0.5, round_to=128)
    after = _counts(model)
    assert min(after.values()) > 0
    assert {name: after[name] for name in record["unrounded_layers"]} == {
        "conv1": 32, "layer1.0.conv1": 32, "layer1.0.conv2": 32, "layer1.1.conv1": 32, "layer1.1.conv2": 32}
    assert after["layer2.0.conv1"] == 128 and after["layer3.0.conv1"] == 128 and after["layer4.0.conv1"] == 256
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_a_layer_that_would_round_to_zero_keeps_round_to_channels(digits: Dataset) -> None:
    model = _model()
    record = _prune(digits, model, amount=0.5, round_to=48)  # 64 -> 32 kept, which rounds down to 0
    after = _counts(model)
    assert after["conv1"] == after["layer1.0.conv1"] == 48 and after["layer2.0.conv1"] == 48
    assert all(count % 48 == 0 for count in after.values()) and record["unrounded_layers"] == []
    assert record["channel_ratio_removed"] > 0.5


def test_rounded_model_exports_to_onnx(digits: Dataset, tmp_path: Path) -> None:
    model = _model()
    _prune(digits, model, amount=0.7, round_to=16)
    x, _ = next(digits.test.batches(32, 8))
    with torch.no_grad():
        expected = model(x)
    export_onnx(model, tmp_path / "model.onnx", 1, 32)
    onnx_out = onnxruntime_session(tmp_path / "model.onnx", 1).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(onnx_out, expected.numpy(), atol=1e-4)


def test_densenet_concatenations_keep_multiples(digits: Dataset) -> None:
    model = _model("torchvision:densenet121", 3)
    before = _counts(model)
    record = _prune(digits, model, amount=0.7, round_to=16)
    after = _counts(model)
    assert all(after[name] % 16 == 0 and 0 < after[name] < before[name] for name in after)
    assert record["unrounded_layers"] == []
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("bad, shown", [(0, "0"), (-3, "-3"), ("0", "0"), (2.5, "2.5")])
def test_round_to_below_1_or_not_an_integer_is_refused(bad: object, shown: str) -> None:
    with pytest.raises(CompressorError, match=f"^channels.round_to must be an integer of at least 1; got {shown}$"):
        build_strategy("channels", {"round_to": bad})
