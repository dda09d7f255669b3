"""Block removal: drop residual blocks and stages (ResNet), dense layers and blocks (DenseNet), or the residual
blocks any other model has (found from its graph: `compressor.strategies.residual`), rewiring shapes.

ResNet: a removed block or stage is replaced by its shortcut (the identity, or the block's 1x1 downsample when
it changes shape), so the rest of the network keeps its weights; stages removed at the end are replaced by the
identity and the classifier is rebuilt for the narrower features (new weights: fine-tune afterwards).
DenseNet: a removed dense layer's channels are cut out of every later consumer of the block's concatenation
(later layers' norm1/conv1, the next transition, or norm5 and the classifier), keeping all other weights.
Any other model: a block whose output is its input plus a branch (MobileNet/EfficientNet inverted residuals, ConvNeXt
and transformer blocks) becomes its skip path; a model without such blocks is refused before any work.
With `amount` and no names, each block's removal is scored alone on the calibration split; the scores are cached
per model (all weights and buffers) so a sweep over amounts measures them once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
from torch import nn
from torchvision.models.densenet import DenseNet, _DenseBlock
from torchvision.models.resnet import ResNet

from compressor._util.fileio import model_fingerprint, read_cached_json, write_json_atomic
from compressor.errors import CompressorError
from compressor.models.zoo import Skip, set_submodule
from compressor.strategies.registry import (
    Strategy,
    StrategyContext,
    StrategyOutput,
    check_fraction,
    param,
    register_strategy,
)
from compressor.strategies.residual import is_outermost_residual, residual_blocks
from compressor.strategies.sensitivity import calib_scores

COSTS_VERSION = 1
PRESETS = {"competition": "layer1.1,layer2,layer3,layer4"}
STAGES = ("layer1", "layer2", "layer3", "layer4")


def removable_units(model: nn.Module) -> list[str]:
    """Names of blocks that can be removed one at a time: ResNet blocks, DenseNet dense layers, or the residual
    blocks found in any other model's graph."""
    if isinstance(model, ResNet):
        return [f"{stage}.{i}" for stage in STAGES for i in range(len(model.get_submodule(stage)))]
    if isinstance(model, DenseNet):
        return [f"{block_name}.{layer}" for block_name, block in model.features.named_children()
                if isinstance(block, _DenseBlock) for layer in block]
    found = residual_blocks(model)
    if not found:
        raise CompressorError(f"blocks found no removable block in {type(model).__name__}: no submodule's output is "
                              "its input plus a branch (x + f(x)); use channels or l1 for this model")
    return found


def remove_residual(model: nn.Module, names: list[str]) -> list[str]:
    """Replace the named residual blocks (of a model that is neither ResNet nor DenseNet) by their skip path."""
    unknown = [name for name in names if not is_outermost_residual(model, name)]
    if unknown:  # only now list them all: each check above traces a block and its ancestors, not the whole model
        raise CompressorError(f"{unknown[0]!r} is not a removable residual block of {type(model).__name__}; "
                              f"choose from: {', '.join(removable_units(model))}")
    for name in names:
        set_submodule(model, name, Skip())
    return [f"{name} -> skip" for name in names]


def _shortcut(block: nn.Module) -> nn.Module:
    downsample = getattr(block, "downsample", None)
    return copy.deepcopy(downsample) if downsample is not None else nn.Identity()


def _stage_width(stage: nn.Sequential) -> int:
    last = stage[-1]
    return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels


def remove_resnet(model: ResNet, names: list[str]) -> list[str]:
    """Remove ResNet stages (`layer3`) and blocks (`layer1.1`); returns what was done, in order."""
    stages = [n for n in names if n in STAGES]
    blocks = [n for n in names if n not in STAGES]
    widths = {stage: _stage_width(model.get_submodule(stage)) for stage in STAGES}
    done = []
    kept = [s for s in STAGES if s not in stages]
    if not kept:
        raise CompressorError("blocks cannot remove all four ResNet stages; keep at least one")
    trailing = STAGES[STAGES.index(kept[-1]) + 1:]
    for name in blocks:
        stage, _, index = name.partition(".")
        if stage not in STAGES or not index.isdigit() or int(index) >= len(model.get_submodule(stage)):
            raise CompressorError(f"unknown ResNet block {name!r}; choose from: {', '.join(removable_units(model))}, "
                                  f"or a stage {', '.join(STAGES)}")
        if stage in stages:
            continue
        set_submodule(model, name, _shortcut(model.get_submodule(name)))
        done.append(f"{name} -> shortcut")
    for stage in stages:
        if stage in trailing:
            set_submodule(model, stage, nn.Identity())
            done.append(f"{stage} -> identity (trailing)")
        else:
            shortcuts = [_shortcut(block) for block in model.get_submodule(stage)]
            set_submodule(model, stage, nn.Sequential(*[s for s in shortcuts if not isinstance(s, nn.Identity)]))
            done.append(f"{stage} -> shortcut")
    if trailing:
        width = widths[kept[-1]]
        model.fc = nn.Linear(width, model.fc.out_features)
        done.append(f"fc -> new Linear({width}, {model.fc.out_features})")
    return done


def _slice_input(module: nn.Module, keep: torch.Tensor) -> nn.Module:
    """A copy of a BatchNorm2d, Conv2d or Linear that reads only the input channels in `keep`."""
    with torch.no_grad():
        if isinstance(module, nn.BatchNorm2d):
            new = nn.BatchNorm2d(len(keep), module.eps, module.momentum, module.affine, module.track_running_stats)
            for attr in ("weight", "bias", "running_mean", "running_var"):
                getattr(new, attr).copy_(getattr(module, attr)[keep])
            new.num_batches_tracked.copy_(module.num_batches_tracked)
        elif isinstance(module, nn.Conv2d):
            new = nn.Conv2d(len(keep), module.out_channels, module.kernel_size, module.stride, module.padding,
                            module.dilation, module.groups, module.bias is not None)
            new.weight.copy_(module.weight[:, keep])
            if module.bias is not None:
                new.bias.copy_(module.bias)
        else:
            new = nn.Linear(len(keep), module.out_features, module.bias is not None)
            new.weight.copy_(module.weight[:, keep])
            if module.bias is not None:
                new.bias.copy_(module.bias)
    return new


def remove_dense(model: DenseNet, names: list[str]) -> list[str]:
    """Remove dense layers (`denseblock4.denselayer32`) or whole dense blocks, cutting their channels downstream."""
    features = model.features
    blocks = [n for n, m in features.named_children() if isinstance(m, _DenseBlock)]
    targets: dict[str, set[str]] = {b: set() for b in blocks}
    for name in names:
        block, _, layer = name.partition(".")
        if block not in targets or (layer and layer not in features.get_submodule(block)):
            raise CompressorError(f"unknown DenseNet block or layer {name!r}; choose a dense block "
                                  f"({', '.join(blocks)}) or one of its layers, e.g. {blocks[-1]}.denselayer1")
        targets[block] |= set(features.get_submodule(block)) if not layer else {layer}
    done = []
    children = list(features.named_children())
    for block_name, removed in targets.items():
        if not removed:
            continue
        block = features.get_submodule(block_name)
        layers = list(block)
        growth = block.get_submodule(layers[0]).conv2.out_channels
        c0 = block.get_submodule(layers[0]).norm1.num_features
        kept_channels = list(range(c0))
        for j, layer_name in enumerate(layers):
            layer = block.get_submodule(layer_name)
            if layer_name in removed:
                delattr(block, layer_name)
                done.append(f"{block_name}.{layer_name} removed")
                continue
            keep = torch.tensor(kept_channels)
            if len(keep) != layer.norm1.num_features:
                layer.norm1, layer.conv1 = _slice_input(layer.norm1, keep), _slice_input(layer.conv1, keep)
            kept_channels += list(range(c0 + j * growth, c0 + (j + 1) * growth))
        keep = torch.tensor(kept_channels)
        position = [n for n, _ in children].index(block_name)
        consumer_name = children[position + 1][0]
        consumer = features.get_submodule(consumer_name)
        if isinstance(consumer, nn.BatchNorm2d):
            features.norm5 = _slice_input(consumer, keep)
            model.classifier = _slice_input(model.classifier, keep)
        else:
            consumer.norm, consumer.conv = _slice_input(consumer.norm, keep), _slice_input(consumer.conv, keep)
        done.append(f"{consumer_name} now reads {len(keep)} channels")
    return done


def remove_blocks(model: nn.Module, names: list[str]) -> list[str]:
    """Remove the named blocks in place (ResNet, DenseNet, or any model's residual blocks); returns what was done."""
    if isinstance(model, ResNet):
        return remove_resnet(model, names)
    if isinstance(model, DenseNet):
        return remove_dense(model, names)
    return remove_residual(model, names)


@register_strategy("blocks")
@dataclass
class BlockRemoval(Strategy):
    """Remove residual blocks/stages or dense layers/blocks by name, or the cheapest ones by measured accuracy."""

    removes_structure: ClassVar[bool] = True  # `amount` is a fraction of what the model has now

    blocks: str = param("", "comma-separated names, e.g. layer2,layer1.1 or denseblock4.denselayer32")
    preset: Literal["none", "competition"] = param("none", "competition: ResNet stem + layer1.0 + classifier")
    amount: float = param(0.0, "without names: fraction of blocks to remove, the cheapest on calibration data")

    def __post_init__(self) -> None:
        check_fraction("blocks.amount", self.amount)
        if self.preset not in ("none", *PRESETS):
            raise CompressorError(f"blocks.preset must be none or one of {', '.join(PRESETS)}; got {self.preset!r}")
        if not self.blocks and self.preset == "none" and self.amount == 0:
            raise CompressorError("blocks needs names (-p blocks=layer4), a preset (-p preset=competition) or "
                                  "--amount to pick the cheapest blocks")

    def _named(self, model: nn.Module) -> list[str] | None:
        """The blocks named by the preset or `blocks`; None when they are to be picked by measurement."""
        if self.preset != "none":
            if not isinstance(model, ResNet):
                raise CompressorError(f"preset {self.preset!r} is for ResNet models; got {type(model).__name__}")
            return PRESETS[self.preset].split(",")
        if self.blocks:
            return [n.strip() for n in self.blocks.split(",") if n.strip()]
        return None

    def check(self, model: nn.Module) -> None:
        """Fail now if `model` has no removable blocks or lacks the named ones (a copy is edited, not `model`)."""
        names = self._named(model)
        if names is None:
            removable_units(model)
        else:
            remove_blocks(copy.deepcopy(model), names)

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Remove the named (or measured-cheapest) blocks and return the rewired model."""
        costs, cached = None, False
        names = self._named(model)
        if names is None:
            costs, cached = self._costs(model, context)
            count = round(self.amount * len(costs))
            names = sorted(costs, key=costs.get)[:count]
        done = remove_blocks(model, names) if names else []
        model.eval()
        return StrategyOutput(model, {"removed": names, "actions": done, "calibration_drop": costs,
                                      "calibration_drop_cached": cached,
                                      "params_after": sum(p.numel() for p in model.parameters())})

    def _costs(self, model: nn.Module, context: StrategyContext) -> tuple[dict[str, float], bool]:
        """Calibration accuracy drop of removing each block alone (read from the cache when measured before)."""
        units = removable_units(model)
        cache = _costs_cache(model, context)
        cached = _read_costs(cache, units)
        if cached is not None:
            return cached, True
        batches = list(context.calib.batches(context.input_size, 256))
        base, _ = calib_scores(model, context, batches)
        costs = {}
        for unit in units:
            trial = copy.deepcopy(model)
            remove_blocks(trial, [unit])
            costs[unit] = base - calib_scores(trial, context, batches)[0]
        if cache is not None:
            write_json_atomic(costs, cache)
        return costs, False


def _costs_cache(model: nn.Module, context: StrategyContext) -> Path | None:
    """Where the block costs of this model (all weights and buffers) on this calibration split are cached."""
    if context.cache_dir is None:
        return None
    facts = [COSTS_VERSION, context.data_key, context.input_size, len(context.calib)]
    return context.cache_dir / "blocks" / f"{model_fingerprint(model, facts)}.json"


def _read_costs(path: Path | None, units: list[str]) -> dict[str, float] | None:
    """Cached costs covering exactly `units`, or None when absent, unreadable or of another model."""
    costs = read_cached_json(path)
    if not isinstance(costs, dict) or set(costs) != set(units):
        return None
    if not all(isinstance(value, (int, float)) for value in costs.values()):
        return None
    return {unit: float(costs[unit]) for unit in units}
