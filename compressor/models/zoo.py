"""Architecture registry: the zoo, `torchvision:NAME`, `timm:NAME`, `package.module:factory` and entry points.

Every architecture is an `ArchInfo` whose `build(num_classes, in_channels, pretrained)` returns a fresh model.
Zoo models (resnet18, densenet201, ...) adapt their stem to any channel count; `torchvision:NAME` models take
3-channel input (grayscale data is repeated to RGB by the caller); factories and timm models take both counts.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from compressor._util.registry import EntryPointRules, Registry
from compressor.errors import CompressorError

ENTRY_POINT_GROUP = "compressor.architectures"
PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)
Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ArchInfo:
    """A resolved architecture: how to build it and what input it takes."""

    name: str
    build: Callable[[int, int, bool], nn.Module]  # (num_classes, in_channels, pretrained) -> model
    min_input_size: int = 32
    channels: int | None = None  # fixed input channels (3 for torchvision:NAME); None: any count
    stem_conv: str | None = None  # zoo models: where the stem and the classifier sit (for export)
    classifier: str | None = None
    source: str = "zoo"


ARCHITECTURES: Registry[ArchInfo] = Registry(
    "architecture", ENTRY_POINT_GROUP,
    EntryPointRules(entry=lambda point, factory: _factory_info(point.name, factory, point.value),
                    own=lambda point, known: known.source.startswith(f"{point.module}:")),
    source=lambda info: info.source, identity=lambda info: info.source)


class Skip(nn.Module):
    """A removed residual block: returns its first input unchanged (extra arguments, such as masks, ignored)."""

    def forward(self, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        return x


def set_submodule(model: nn.Module, path: str, module: nn.Module) -> None:
    """Replace the submodule at dotted `path` with `module`."""
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, module)


def _add(info: ArchInfo) -> None:
    ARCHITECTURES.add(info.name, info)


def register_arch(name: str, *, min_input_size: int = 32) -> Callable[[Factory], Factory]:
    """Decorator registering a factory `fn(num_classes, in_channels) -> nn.Module` under `name`."""

    def decorator(factory: Factory) -> Factory:
        _add(_factory_info(name, factory, f"{factory.__module__}:{factory.__qualname__}", min_input_size))
        return factory

    return decorator


def _factory_info(name: str, factory: Factory, source: str, min_input_size: int = 32) -> ArchInfo:
    def build(num_classes: int, in_channels: int, pretrained: bool) -> nn.Module:
        if pretrained:
            raise CompressorError(f"--pretrained is not available for {name}: its factory builds fresh weights; "
                                  "load trained ones with --model")
        model = factory(num_classes=num_classes, in_channels=in_channels)
        if not isinstance(model, nn.Module):
            raise CompressorError(f"architecture factory {source} returned {type(model).__name__}, not an "
                                  "nn.Module")
        return model

    return ArchInfo(name, build, min_input_size, None, source=source)


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


def _small_input_stem(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A fresh 3x3 stride-1 stem in place of a 7x7 stride-2 one: small images (28-32 px) keep 4x more resolution."""
    return nn.Conv2d(in_channels, conv.out_channels, kernel_size=3, stride=1, padding=1, bias=False)


def _zoo(name: str, builder: str, weights: str, stem_conv: str, classifier: str, min_input_size: int = 32,
         small_stem: bool = False, **options: object) -> None:
    """Register torchvision's `builder` with its stem adapted to any channel count and a fresh classifier
    (`small_stem`: a fresh 3x3 stride-1 stem; pretrained weights then cover the rest of the network)."""

    def build(num_classes: int, in_channels: int, pretrained: bool) -> nn.Module:
        import torchvision.models

        chosen = _fetch_weights(getattr(torchvision.models, weights).DEFAULT, name) if pretrained else None
        model = getattr(torchvision.models, builder)(weights=chosen, **options)
        stem = model.get_submodule(stem_conv)
        if small_stem:
            set_submodule(model, stem_conv, _small_input_stem(stem, in_channels))
        elif in_channels != stem.in_channels:
            set_submodule(model, stem_conv, _adapt_stem(stem, in_channels))
        head = model.get_submodule(classifier)
        set_submodule(model, classifier, nn.Linear(head.in_features, num_classes))
        return model

    _add(ArchInfo(name, build, min_input_size, None, stem_conv, classifier))


_zoo("resnet18", "resnet18", "ResNet18_Weights", "conv1", "fc")
# ResNet18 for small inputs: 3x3 stride-1 stem, max-pool kept (16x downsampling, 4x the MACs of resnet18 at 32 px).
_zoo("resnet18-s1", "resnet18", "ResNet18_Weights", "conv1", "fc", min_input_size=16, small_stem=True)
_zoo("resnet50", "resnet50", "ResNet50_Weights", "conv1", "fc")
_zoo("densenet169", "densenet169", "DenseNet169_Weights", "features.conv0", "classifier")
_zoo("densenet201", "densenet201", "DenseNet201_Weights", "features.conv0", "classifier")
# Inception-v3 without the auxiliary classifier or the RGB-specific input transform (any channel count).
_zoo("inception_v3", "inception_v3", "Inception_V3_Weights", "Conv2d_1a_3x3.conv", "fc", min_input_size=75,
     aux_logits=False, transform_input=False, init_weights=False)


def _fetch_weights(weights: object, name: str) -> object:
    """Fetch torchvision `weights`, failing with one clear line when offline."""
    try:
        weights.get_state_dict(progress=False, check_hash=True)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - urllib, ssl and socket errors all mean "could not fetch"
        raise CompressorError(f"--pretrained needs torchvision's {weights} weights for {name}, which could not be "
                              f"loaded (offline? cache is $TORCH_HOME/hub): {exc}") from exc
    return weights


def _torchvision_info(model_name: str) -> ArchInfo:
    """`torchvision:NAME`: any torchvision classification model, 3-channel input."""
    import torchvision.models

    known = torchvision.models.list_models(module=torchvision.models)
    if model_name not in known:
        close = [n for n in known if model_name.lower() in n] or known[:12]
        raise CompressorError(f"torchvision has no classification model {model_name!r}; e.g. "
                              f"{', '.join(close[:12])} (all: torchvision.models.list_models())")

    def build(num_classes: int, in_channels: int, pretrained: bool) -> nn.Module:
        if in_channels != 3:
            raise CompressorError(f"torchvision:{model_name} takes 3-channel input; got {in_channels} channels")
        options: dict[str, object] = {"aux_logits": False, "init_weights": False} \
            if model_name in ("inception_v3", "googlenet") else {}
        if not pretrained:
            return torchvision.models.get_model(model_name, weights=None, num_classes=num_classes, **options)
        weights = _fetch_weights(torchvision.models.get_model_weights(model_name).DEFAULT, model_name)
        model = torchvision.models.get_model(model_name, weights=weights)
        path, head = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
        set_submodule(model, path, nn.Linear(head.in_features, num_classes, bias=head.bias is not None))
        return model

    return ArchInfo(f"torchvision:{model_name}", build, 75 if model_name == "inception_v3" else 32, 3,
                    source="torchvision")


def _timm_info(spec: str) -> ArchInfo:
    """`timm:NAME`, or `timm:NAME:key=value:...` with keyword arguments for timm.create_model (e.g. a ViT for small
    inputs: `timm:vit_tiny_patch16_224:img_size=32:patch_size=4`): any timm model (needs the optional `timm` extra)."""
    try:
        import timm
    except ImportError:
        raise CompressorError(f"--arch timm:{spec} needs timm: pip install 'compressor-bench[timm]'") from None
    model_name, *settings = spec.split(":")
    if not timm.list_models(model_name):
        raise CompressorError(f"timm has no model {model_name!r}; see timm.list_models('*{model_name}*')")
    options = _timm_options(model_name, settings)

    def build(num_classes: int, in_channels: int, pretrained: bool) -> nn.Module:
        try:
            return timm.create_model(model_name, pretrained=pretrained, num_classes=num_classes,
                                     in_chans=in_channels, **options)
        except TypeError as exc:
            raise CompressorError(f"timm:{model_name} does not take {', '.join(options)} ({exc}); give only "
                                  "keyword arguments of its constructor") from None
        except Exception as exc:  # noqa: BLE001 - hub download failures come in many types
            if not pretrained:
                raise
            raise CompressorError(f"--pretrained weights for timm:{model_name} could not be loaded (offline?): "
                                  f"{exc}") from exc

    size = options.get("img_size")
    return ArchInfo(f"timm:{spec}", build, size if isinstance(size, int) else 32, None, source="timm")


def _timm_options(model_name: str, settings: list[str]) -> dict[str, object]:
    """`key=value` pieces of a timm spec as keyword arguments: integers, floats and true/false parsed, else text."""
    options: dict[str, object] = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or not key.isidentifier() or not text:
            raise CompressorError(f"timm:{model_name}: {setting!r} is not key=value (e.g. "
                                  f"timm:{model_name}:img_size=32)")
        value: object = text
        for parse in (int, float):
            try:
                value = parse(text)
                break
            except ValueError:
                continue
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        options[key] = value
    return options


def _import_factory(spec: str) -> ArchInfo:
    """`package.module:factory`: a callable taking `num_classes` and `in_channels`."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CompressorError(f"--arch {spec}: cannot import module {module_name!r} ({exc})") from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise CompressorError(f"--arch {spec}: module {module_name!r} has no attribute {attr!r}")
    if not callable(factory):
        raise CompressorError(f"--arch {spec}: {attr!r} is not callable")
    return _factory_info(spec, factory, spec)


def list_archs(pattern: str = "*") -> list[str]:
    """Registered architecture names (zoo and entry points) matching a shell-style `pattern`, sorted."""
    return ARCHITECTURES.names(pattern)


def arch_plugin_errors() -> dict[str, str]:
    """Architecture entry points that failed to load, by name, with the reason."""
    return ARCHITECTURES.plugin_errors()


ARCH_FORMS = "a registered name, torchvision:NAME, timm:NAME[:key=value...] or package.module:factory"


def get_arch(name: str) -> ArchInfo:
    """The architecture `name` in any of its forms, or a CompressorError saying which forms exist."""
    known = ARCHITECTURES.find(name)
    if known is not None:
        return known
    prefix, sep, rest = name.partition(":")
    if sep and rest:
        if prefix == "torchvision":
            return _torchvision_info(rest)
        if prefix == "timm":
            return _timm_info(rest)
        if re.fullmatch(r"[A-Za-z_][\w.]*", prefix) and re.fullmatch(r"[A-Za-z_][\w.]*", rest):
            return _import_factory(name)
    hint = ARCHITECTURES.failure_hint(name)
    raise CompressorError(f"unknown architecture {name!r}{hint}; give {ARCH_FORMS} (registered: "
                          f"{', '.join(list_archs())})")


def arch_slug(name: str) -> str:
    """A file-name-safe form of an architecture name (`torchvision:vgg11` -> `torchvision-vgg11`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def build_model(arch: str, num_classes: int, in_channels: int = 3, *, pretrained: bool = False) -> nn.Module:
    """Build `arch` for `num_classes` and `in_channels`; `pretrained` loads the source's ImageNet weights."""
    info = get_arch(arch)
    if num_classes < 2:
        raise CompressorError(f"num_classes must be at least 2, got {num_classes}")
    return info.build(num_classes, in_channels, pretrained)


def model_channels(arch: str, data_channels: int) -> int:
    """The input channels a model of `arch` gets for data with `data_channels` (3 for RGB-only models)."""
    fixed = get_arch(arch).channels
    if fixed is None or fixed == data_channels:
        return data_channels
    if data_channels == 1 and fixed == 3:
        return 3
    raise CompressorError(f"{arch} takes {fixed}-channel input; the data has {data_channels} channels")


def input_size_for(arch: str, native_size: int, requested: int | None = None) -> int:
    """The input size to train and measure at: `requested`, else the native size raised to the arch's minimum."""
    info = get_arch(arch)
    size = requested if requested is not None else max(native_size, info.min_input_size)
    if size < info.min_input_size:
        raise CompressorError(f"--input-size {size} is too small for {arch}; it needs at least {info.min_input_size}")
    return size
