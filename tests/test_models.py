"""Model zoo: adapted to channels, classes and minimum input size; clear errors for unknown archs and offline weights."""

from __future__ import annotations

import pytest
import torch

from compressor.errors import CompressorError
from compressor.models import build_model, input_size_for, list_archs


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "densenet169", "densenet201"])
def test_every_arch_adapts_to_grayscale_and_class_count_at_min_size(arch: str) -> None:
    model = build_model(arch, 7, 1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)


def test_registry_lists_required_archs() -> None:
    assert {"resnet18", "densenet201"} <= set(list_archs())
    assert list_archs("dense*") == ["densenet169", "densenet201"]


def test_input_size_defaults_to_native_raised_to_minimum() -> None:
    assert input_size_for("resnet18", 8) == 32
    assert input_size_for("resnet18", 224) == 224
    assert input_size_for("densenet201", 28, 64) == 64
    with pytest.raises(CompressorError, match="needs at least 32"):
        input_size_for("densenet201", 28, 28)


def test_unknown_arch_lists_the_known_ones() -> None:
    with pytest.raises(CompressorError, match="unknown architecture 'vgg11'; choose one of: densenet169"):
        build_model("vgg11", 10)


def test_pretrained_offline_fails_with_one_clear_error(monkeypatch) -> None:
    import torchvision.models

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights.DEFAULT.__class__, "get_state_dict", offline)
    with pytest.raises(CompressorError, match="--pretrained needs torchvision's .* network is unreachable"):
        build_model("resnet18", 10, pretrained=True)
