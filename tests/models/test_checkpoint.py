"""Checkpoints: weights-only loading, structural edits rebuilt exactly, clear refusals of bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.models.checkpoint import (
    Checkpoint,
    ModelSpec,
    apply_edits,
    load_checkpoint,
    save_checkpoint,
    structure_edits,
)
from compressor.models.zoo import build_model


def _spec(arch: str = "resnet18", num_classes: int = 10, in_channels: int = 1) -> ModelSpec:
    return ModelSpec(arch=arch, num_classes=num_classes, in_channels=in_channels, input_size=32, dataset="digits",
                     classes=tuple(str(i) for i in range(num_classes)), mean=(0.3,), std=(0.4,))


def _roundtrip(model: nn.Module, tmp_path: Path, spec: ModelSpec | None = None) -> Checkpoint:
    path = tmp_path / "model.pt"
    save_checkpoint(Checkpoint(spec or _spec(), model, [{"step": "test"}]), path)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "compressor.checkpoint"
    return load_checkpoint(path)


def _same_outputs(a: nn.Module, b: nn.Module, channels: int = 1) -> None:
    x = torch.randn(2, channels, 32, 32)
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def test_plain_model_roundtrips_with_spec_and_history(tmp_path: Path) -> None:
    model = build_model("resnet18", 10, 1).eval()
    loaded = _roundtrip(model, tmp_path)
    assert loaded.spec == _spec()
    assert loaded.history == [{"step": "test"}]
    _same_outputs(model, loaded.model)


def test_removed_stage_and_rewired_head_are_rebuilt_and_gone_from_the_file(tmp_path: Path) -> None:
    model = build_model("resnet18", 10, 1)
    model.layer3, model.layer4 = nn.Identity(), nn.Identity()
    model.fc = nn.Linear(128, 10)
    loaded = _roundtrip(model, tmp_path)
    keys = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"].keys()
    assert not any(k.startswith(("layer3.", "layer4.")) for k in keys)
    assert isinstance(loaded.model.layer4, nn.Identity)
    _same_outputs(model, loaded.model)


def test_shrunken_channels_and_deleted_blocks_are_rebuilt(tmp_path: Path) -> None:
    model = build_model("resnet18", 10, 1)
    block = model.layer1[0]
    block.conv1 = nn.Conv2d(64, 24, 3, padding=1, bias=False)
    block.bn1 = nn.BatchNorm2d(24)
    block.conv2 = nn.Conv2d(24, 64, 3, padding=1, bias=False)
    del model.layer2[1]
    edits = structure_edits(build_model("resnet18", 10, 1), model)
    assert {e["op"] for e in edits} == {"replace", "delete"}
    loaded = _roundtrip(model, tmp_path)
    assert loaded.model.layer1[0].conv1.out_channels == 24 and len(loaded.model.layer2) == 1
    _same_outputs(model, loaded.model)


def test_densenet_with_a_deleted_dense_layer_is_rebuilt(tmp_path: Path) -> None:
    model = build_model("densenet169", 5, 3)
    block = model.features.denseblock4
    last = list(block.keys())[-1]
    del block[last]
    growth = 32
    norm5 = model.features.norm5
    model.features.norm5 = nn.BatchNorm2d(norm5.num_features - growth)
    model.classifier = nn.Linear(norm5.num_features - growth, 5)
    loaded = _roundtrip(model, tmp_path, _spec("densenet169", 5, 3))
    assert last not in loaded.model.features.denseblock4
    _same_outputs(model, loaded.model, channels=3)


def test_unrebuildable_module_type_is_refused_at_save(tmp_path: Path) -> None:
    model = build_model("resnet18", 10, 1)
    model.fc = nn.Sequential(nn.Linear(512, 10), nn.GELU())
    with pytest.raises(CompressorError, match="module type GELU is not one of the rebuildable types"):
        save_checkpoint(Checkpoint(_spec(), model), tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_carrying_pickled_code_is_refused_and_payload_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    path = tmp_path / "evil.pt"
    torch.save({"format": "compressor.checkpoint", "version": 1, "x": payload}, path)
    with pytest.raises(CompressorError, match="refusing to load .*weights_only=True.*posix.system"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (b"", "empty, truncated or not a torch file"),
    (b"not a checkpoint at all", "empty, truncated or not a torch file"),
])
def test_corrupt_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CompressorError, match=message):
        load_checkpoint(path)


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(Checkpoint(_spec(), build_model("resnet18", 10, 1)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CompressorError, match="cannot read checkpoint"):
        load_checkpoint(path)


def test_plain_state_dict_and_missing_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sd.pt"
    torch.save(build_model("resnet18", 10, 1).state_dict(), path)
    with pytest.raises(CompressorError, match="is not a compressor checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CompressorError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_whose_weights_do_not_fit_its_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_checkpoint(Checkpoint(_spec(), build_model("resnet18", 10, 1)), path)
    raw = torch.load(path, weights_only=True)
    raw["spec"]["arch"] = "resnet50"
    torch.save(raw, path)
    with pytest.raises(CompressorError, match="do not fit its resnet50 structure"):
        load_checkpoint(path)



class Scale(nn.Module):
    """A layer type outside the rebuildable list, sized by a plain attribute, as third-party layers are."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.linspace(0.5, 1.5, channels))
        self.register_buffer("offset", torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, self.channels, 1, 1) + self.offset.view(1, self.channels, 1, 1)


def test_a_layer_of_an_unknown_type_resized_in_place_is_recorded_and_rebuilt_exactly() -> None:
    def base() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3), Scale(4))

    model = base()
    keep = torch.tensor([0, 2])
    slim = nn.Conv2d(1, 2, 3)
    with torch.no_grad():
        slim.weight.copy_(model[0].weight[keep])
        slim.bias.copy_(model[0].bias[keep])
        model[0] = slim
        model[1].weight = nn.Parameter(model[1].weight[keep].clone())
        model[1].offset = model[1].offset[keep].clone() + 0.25
        model[1].channels = 2
    edits = structure_edits(base(), model)
    resize = next(e for e in edits if e["op"] == "resize")
    assert resize == {"op": "resize", "path": "1", "shapes": {"weight": [2], "offset": [2]}, "attrs": {"channels": 2}}
    rebuilt = apply_edits(base(), edits)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 1, 5, 5)
    assert torch.equal(rebuilt(x), model(x))


def test_timm_models_with_their_own_layer_types_are_channel_pruned_saved_and_reloaded(digits, tmp_path) -> None:
    pytest.importorskip("timm", reason="the optional timm extra is not installed")
    from compressor.strategies.registry import StrategyContext, build_strategy

    torch.manual_seed(0)
    model = build_model("timm:mobilenetv3_small_050", 10, 1).eval()  # BatchNormAct2d: a timm layer type
    pruned = build_strategy("channels", {"amount": 0.5, "importance": "l1"}).apply(
        model, StrategyContext.for_dataset(digits, 32)).model.eval()
    spec = ModelSpec("timm:mobilenetv3_small_050", 10, 1, 32, "digits", tuple("0123456789"), (0.5,), (0.5,))
    save_checkpoint(Checkpoint(spec, pruned), tmp_path / "timm.pt")
    reloaded = load_checkpoint(tmp_path / "timm.pt").model
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(reloaded(x), pruned(x))
