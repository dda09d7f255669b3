"""Architecture zoo: torchvision models adapted to a dataset's channels, classes and minimum input size."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from compressor.errors import CompressorError


@dataclass(frozen=True)
class ArchInfo:
    """A registered architecture: its torchvision builder, weights enum name and input constraints."""

    name: str
    builder: Callable[..., nn.Module]
    weights: str
    min_input_size: int
    stem_conv: str
    classifier: str


_ARCHS: dict[str, ArchInfo] = {}
PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


def register_arch(name: str, *, weights: str, stem_conv: str, classifier: str,
                  min_input_size: int = 32) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a torchvision-style builder `fn(weights=None, num_classes=1000)` under `name`."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _ARCHS[name] = ArchInfo(name, builder, weights, min_input_size, stem_conv, classifier)
        return builder

    return decorator


def _torchvision(name: str) -> Callable[..., nn.Module]:
    def build(**kwargs: object) -> nn.Module:
        import torchvision.models

        return getattr(torchvision.models, name)(**kwargs)

    build.__name__ = name
    return build


register_arch("resnet18", weights="ResNet18_Weights", stem_conv="conv1", classifier="fc")(_torchvision("resnet18"))
register_arch("resnet50", weights="ResNet50_Weights", stem_conv="conv1", classifier="fc")(_torchvision("resnet50"))
register_arch("densenet169", weights="DenseNet169_Weights", stem_conv="features.conv0",
              classifier="classifier")(_torchvision("densenet169"))


def _inception_v3(**kwargs: object) -> nn.Module:
    """Inception-v3 without the auxiliary classifier or RGB-specific input transform (any channel count)."""
    import torchvision.models

    return torchvision.models.inception_v3(aux_logits=False, transform_input=False, init_weights=False, **kwargs)


register_arch("inception_v3", weights="Inception_V3_Weights", stem_conv="Conv2d_1a_3x3.conv", classifier="fc",
              min_input_size=75)(_inception_v3)
register_arch("densenet201", weights="DenseNet201_Weights", stem_conv="features.conv0",
              classifier="classifier")(_torchvision("densenet201"))


def list_archs(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a shell-style `pattern`, sorted."""
    return sorted(name for name in _ARCHS if fnmatch.fnmatch(name, pattern))


def get_arch(name: str) -> ArchInfo:
    """The registered architecture `name`, or a CompressorError listing the known ones."""
    try:
        return _ARCHS[name]
    except KeyError:
        raise CompressorError(f"unknown architecture {name!r}; choose one of: {', '.join(list_archs())}") from None


def set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted `path` with `module`."""
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, module)


def _adapt_stem(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of the stem convolution taking `in_channels`; pretrained RGB filters are summed for grayscale."""
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None)
    with torch.no_grad():
        if in_channels == 1:
            new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        elif in_channels == conv.in_channels:
            new.weight.copy_(conv.weight)
    return new


def build_model(arch: str, num_classes: int, in_channels: int = 3, *, pretrained: bool = False) -> nn.Module:
    """Build `arch` for `num_classes` and `in_channels`; `pretrained` loads torchvision's ImageNet weights."""
    info = get_arch(arch)
    if num_classes < 2:
        raise CompressorError(f"num_classes must be at least 2, got {num_classes}")
    if pretrained:
        model = info.builder(weights=_pretrained_weights(info))
    else:
        model = info.builder(weights=None)
    stem = model.get_submodule(info.stem_conv)
    if in_channels != stem.in_channels:
        set_submodule(model, info.stem_conv, _adapt_stem(stem, in_channels))
    head = model.get_submodule(info.classifier)
    set_submodule(model, info.classifier, nn.Linear(head.in_features, num_classes))
    return model


def _pretrained_weights(info: ArchInfo) -> object:
    """Fetch torchvision's default ImageNet weights for `info`, failing with one clear line when offline."""
    import torchvision.models

    weights = getattr(torchvision.models, info.weights).DEFAULT
    try:
        weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - urllib, ssl and socket errors all mean "could not fetch"
        raise CompressorError(f"--pretrained needs torchvision's {weights} weights for {info.name}, which could "
                              f"not be loaded (offline? cache is $TORCH_HOME/hub): {exc}") from exc
    return weights


def input_size_for(arch: str, native_size: int, requested: int | None = None) -> int:
    """The input size to train and measure at: `requested`, else the native size raised to the arch's minimum."""
    info = get_arch(arch)
    size = requested if requested is not None else max(native_size, info.min_input_size)
    if size < info.min_input_size:
        raise CompressorError(f"--input-size {size} is too small for {arch}; it needs at least {info.min_input_size}")
    return size
