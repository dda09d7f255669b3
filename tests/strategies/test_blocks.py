"""blocks: shapes stay right, removed modules leave the checkpoint, and the model reloads exactly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.models.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint
from compressor.models.zoo import build_model
from compressor.strategies.registry import StrategyContext, build_strategy


def _apply(arch: str, digits: Dataset, tmp_path: Path, **params) -> tuple[nn.Module, dict, set[str]]:
    torch.manual_seed(0)
    model = build_model(arch, 10, 1).eval()
    record = build_strategy("blocks", params).apply(model, StrategyContext.for_dataset(digits, input_size=32)).record
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 10)
    spec = ModelSpec(arch, 10, 1, 32, "digits", digits.info.classes, digits.info.mean, digits.info.std)
    save_checkpoint(Checkpoint(spec, model), tmp_path / "model.pt")
    keys = set(torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"])
    with torch.no_grad():
        assert torch.equal(load_checkpoint(tmp_path / "model.pt").model(x), out)
    return model, record, keys


def test_competition_preset_keeps_stem_first_block_and_a_new_classifier(digits: Dataset, tmp_path: Path) -> None:
    model, record, keys = _apply("resnet18", digits, tmp_path, preset="competition")
    assert not any(k.startswith(("layer1.1.", "layer2.", "layer3.", "layer4.")) for k in keys)
    assert any(k.startswith("layer1.0.") for k in keys) and model.fc.in_features == 64
    assert record["params_after"] == 77_898  # the figure docs/strategies.md states for digits (1 channel, 10 classes)


def test_a_middle_stage_becomes_its_shortcut(digits: Dataset, tmp_path: Path) -> None:
    model, _, keys = _apply("resnet18", digits, tmp_path, blocks="layer2,layer3.1")
    assert not any(k.startswith(("layer2.0.conv", "layer2.1.", "layer3.1.")) for k in keys)
    assert isinstance(model.layer3[1], nn.Identity) and model.fc.in_features == 512


def test_dense_layers_and_blocks_are_cut_with_channel_bookkeeping(digits: Dataset, tmp_path: Path) -> None:
    model, _, keys = _apply("densenet169", digits, tmp_path, blocks="denseblock4.denselayer2,denseblock3")
    assert not any(k.startswith(("features.denseblock3.", "features.denseblock4.denselayer2.")) for k in keys)
    growth = 32
    assert model.features.denseblock4.denselayer3.norm1.num_features == 640 + growth  # c0 + layer1 only
    assert model.classifier.in_features == 1664 - growth
    assert model.features.transition3.conv.in_channels == 256  # an empty denseblock3 passes its input through


def test_amount_removes_the_blocks_with_the_smallest_measured_drop(digits: Dataset, tmp_path: Path) -> None:
    _, record, _ = _apply("resnet18", digits, tmp_path, amount=0.25)
    costs = record["calibration_drop"]
    assert len(costs) == 8 and len(record["removed"]) == 2
    assert max(costs[n] for n in record["removed"]) <= min(c for n, c in costs.items() if n not in record["removed"])


def test_measured_costs_are_cached_per_model_and_reused(digits: Dataset, tmp_path: Path, monkeypatch) -> None:
    import compressor.strategies.blocks as blocks

    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1).eval()
    context = StrategyContext.for_dataset(digits, input_size=32, cache_dir=tmp_path)
    strategy = build_strategy("blocks", {"amount": 0.25})
    first = strategy.apply(copy.deepcopy(model), context).record
    monkeypatch.setattr(blocks, "calib_scores", lambda *_: pytest.fail("cached costs were measured again"))
    second = strategy.apply(copy.deepcopy(model), context).record
    assert not first["calibration_drop_cached"] and second["calibration_drop_cached"]
    assert second["calibration_drop"] == first["calibration_drop"] and second["removed"] == first["removed"]
    changed = copy.deepcopy(model)
    with torch.no_grad():
        changed.fc.bias[0] += 1.0
    with pytest.raises(pytest.fail.Exception, match="measured again"):
        strategy.apply(changed, context)  # another model's weights: the cache does not apply
    for entry in (tmp_path / "blocks").iterdir():
        entry.write_text("{not json")
    monkeypatch.undo()
    assert not strategy.apply(copy.deepcopy(model), context).record["calibration_drop_cached"]  # damaged: remeasured


@pytest.mark.parametrize("arch, params, message", [
    ("resnet18", {"blocks": "layer5"}, "unknown ResNet block 'layer5'; choose from: layer1.0"),
    ("densenet169", {"blocks": "denseblock9"}, "unknown DenseNet block or layer 'denseblock9'"),
    ("densenet169", {"preset": "competition"}, "preset 'competition' is for ResNet models"),
    ("resnet18", {"blocks": "layer1,layer2,layer3,layer4"}, "cannot remove all four ResNet stages"),
])
def test_blocks_that_do_not_fit_the_model_are_refused(digits: Dataset, arch: str, params: dict, message: str) -> None:
    with pytest.raises(CompressorError, match=message):
        build_strategy("blocks", params).apply(build_model(arch, 10, 1), StrategyContext.for_dataset(digits,
                                                                                                      input_size=32))


def test_blocks_without_names_preset_or_amount_is_refused() -> None:
    with pytest.raises(CompressorError, match="blocks needs names"):
        build_strategy("blocks", {})


def _count(model: torch.nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("arch, block_type", [
    ("torchvision:mobilenet_v3_small", "InvertedResidual"),
    ("torchvision:efficientnet_b0", "MBConv"),
    ("torchvision:convnext_tiny", "CNBlock"),
    ("torchvision:regnet_y_400mf", "ResBottleneckBlock"),
])
def test_residual_blocks_are_found_from_the_graph_and_removed_keeping_shapes(arch: str, block_type: str) -> None:
    from compressor.models.zoo import Skip
    from compressor.strategies.blocks import removable_units, remove_blocks

    model = build_model(arch, 10, 3).eval()
    found = removable_units(model)
    residual = [name for name, m in model.named_modules() if type(m).__name__ == block_type
                and getattr(m, "use_res_connect", True) and getattr(m, "proj", None) is None]
    assert found == residual, "exactly the blocks whose output is input + branch, no class list consulted"
    x = torch.randn(2, 3, 64, 64)
    before = model(x)
    remove_blocks(model, found[:2])
    assert _count(model, Skip) == 2 and model(x).shape == before.shape


def test_a_transformer_block_is_residual_and_a_plain_stack_has_no_removable_block() -> None:
    from compressor.strategies.residual import is_residual, residual_blocks

    pytest.importorskip("timm")
    vit = build_model("timm:vit_tiny_patch16_224", 10, 3)
    assert residual_blocks(vit) == [f"blocks.{i}" for i in range(12)], "timm's Block: x + attn, then + mlp"

    class Projected(torch.nn.Module):  # a strided first block: its skip path is a convolution, not x
        def __init__(self, activate: bool) -> None:
            super().__init__()
            self.conv, self.proj = torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.Conv2d(4, 4, 1)
            self.activate = activate

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            total = self.proj(x) + self.conv(x)
            return torch.relu(total) if self.activate else total

    class AfterTheSum(Projected):  # RegNet's and ResNet's shape: relu(x + f(x)) loses the relu with the branch
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.conv(x))

    assert not is_residual(Projected(True)) and not is_residual(Projected(False))
    assert is_residual(AfterTheSum(True))
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    with pytest.raises(CompressorError, match="blocks found no removable block in Sequential"):
        build_strategy("blocks", {"amount": 0.5}).check(plain)


def test_a_removed_residual_block_survives_a_checkpoint(tmp_path: Path, digits: Dataset) -> None:
    from compressor.models.zoo import Skip
    from compressor.strategies.blocks import removable_units, remove_blocks

    arch = "torchvision:mobilenet_v3_small"
    info = digits.info
    model = build_model(arch, 10, 3).eval()
    first = removable_units(model)[0]
    remove_blocks(model, [first])
    path = save_checkpoint(Checkpoint(ModelSpec(arch, 10, 3, 32, "digits", info.classes, info.mean, info.std),
                                      model), tmp_path / "m.pt")
    loaded = load_checkpoint(path).model.eval()
    assert isinstance(loaded.get_submodule(first), Skip)
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(loaded(x), model(x))


def test_checking_one_name_agrees_with_listing_every_block() -> None:
    from compressor.strategies.residual import is_outermost_residual, residual_blocks

    model = build_model("torchvision:efficientnet_b0", 10, 3)
    listed = residual_blocks(model)
    assert [name for name, _ in model.named_modules() if is_outermost_residual(model, name)] == listed
    assert not is_outermost_residual(model, "no.such.module")
