"""Model zoo: adapted to channels, classes and input size; clear errors for unknown archs and offline weights."""

from __future__ import annotations

import pytest
import torch

from compressor.errors import CompressorError
from compressor.models.zoo import (
    arch_plugin_errors,
    build_model,
    get_arch,
    input_size_for,
    list_archs,
    model_channels,
    register_arch,
)


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
    with pytest.raises(CompressorError, match="unknown architecture 'vgg11'; give a registered name, "
                                              "torchvision:NAME.*registered: densenet169"):
        build_model("vgg11", 10)


def test_pretrained_offline_fails_with_one_clear_error(monkeypatch) -> None:
    import torchvision.models

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights.DEFAULT.__class__, "get_state_dict", offline)
    with pytest.raises(CompressorError, match="--pretrained needs torchvision's .* network is unreachable"):
        build_model("resnet18", 10, pretrained=True)


def test_any_torchvision_classifier_builds_for_rgb_input() -> None:
    model = build_model("torchvision:mobilenet_v3_small", 5, 3).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert get_arch("torchvision:mobilenet_v3_small").channels == 3
    assert model_channels("torchvision:mobilenet_v3_small", 1) == 3  # grayscale data is repeated to RGB
    with pytest.raises(CompressorError, match="torchvision has no classification model 'resnet19'"):
        get_arch("torchvision:resnet19")


def test_a_factory_takes_num_classes_and_in_channels() -> None:
    model = build_model("factories:small_cnn", 4, 1).eval()
    assert model(torch.randn(1, 1, 8, 8)).shape == (1, 4)
    with pytest.raises(CompressorError, match="cannot import module 'no_such_module'"):
        get_arch("no_such_module:factory")
    with pytest.raises(CompressorError, match="module 'factories' has no attribute 'nothing'"):
        get_arch("factories:nothing")


def test_timm_models_build_when_the_extra_is_installed() -> None:
    pytest.importorskip("timm", reason="the optional timm extra is not installed")
    model = build_model("timm:resnet10t", 3, 1).eval()
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3)


def test_a_timm_spec_passes_keyword_arguments_so_a_vit_takes_small_inputs() -> None:
    pytest.importorskip("timm", reason="the optional timm extra is not installed")
    spec = "timm:vit_tiny_patch16_224:img_size=32:patch_size=4"
    model = build_model(spec, 10, 1).eval()
    assert model.patch_embed.patch_size == (4, 4) and model.pos_embed.shape[1] == 1 + (32 // 4) ** 2
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    assert input_size_for(spec, 28) == 32  # the size it was built for, not the 224 of its name
    with pytest.raises(CompressorError, match="'img_size' is not key=value"):
        get_arch("timm:vit_tiny_patch16_224:img_size")
    with pytest.raises(CompressorError, match="does not take bogus"):
        build_model("timm:vit_tiny_patch16_224:bogus=3", 10, 1)


def test_architecture_entry_points_load_lazily_and_a_broken_one_is_reported() -> None:
    from importlib.metadata import EntryPoint

    import compressor.models.zoo as models

    points = [EntryPoint("tiny-cnn", "factories:small_cnn", models.ENTRY_POINT_GROUP),
              EntryPoint("broken", "no_such_module:factory", models.ENTRY_POINT_GROUP)]
    with models.ARCHITECTURES.isolated(points):
        assert "tiny-cnn" in list_archs()
        assert build_model("tiny-cnn", 3, 1)(torch.randn(1, 1, 8, 8)).shape == (1, 3)
        assert "broken" in arch_plugin_errors()
        with pytest.raises(CompressorError, match="its plugin failed to load"):
            get_arch("broken")
    assert "tiny-cnn" not in list_archs() and "broken" not in arch_plugin_errors()


def test_registering_an_architecture_name_twice_is_an_error() -> None:
    import compressor.models.zoo as models

    with models.ARCHITECTURES.isolated(), pytest.raises(CompressorError, match="'resnet18' is already registered"):
        register_arch("resnet18")(lambda num_classes, in_channels: None)
