"""Structured channel pruning through torch-pruning's dependency graph: a physically smaller network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch_pruning as tp
from torch import nn

from compressor.errors import CompressorError
from compressor.strategies.registry import (
    Strategy,
    StrategyContext,
    StrategyOutput,
    check_fraction,
    check_int,
    param,
    register_strategy,
)

IMPORTANCES = ("l1", "l2", "taylor", "bn-scale")


def _importance(name: str) -> Any:
    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    return tp.importance.BNScaleImportance()


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """Multi-head attention written as one fused `qkv` Linear with `num_heads` and `head_dim` attributes (timm's
    ViT, DeiT and their kin): torch-pruning is told the head count, so every head narrows alike and stays whole."""
    return [m for m in model.modules() if isinstance(getattr(m, "qkv", None), nn.Linear)
            and isinstance(getattr(m, "num_heads", None), int) and isinstance(getattr(m, "head_dim", None), int)]


def _channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv and of every linear layer but the classifier (the last one, never pruned):
    a transformer's widths live in its linear layers."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return {name: m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
            for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) or (isinstance(m, nn.Linear) and name != linears[-1])}


def _bn_scales_tie(model: nn.Module) -> bool:
    """True when every BatchNorm scale in `model` is the same number (BatchNorm's initialization)."""
    scales = torch.cat([m.weight.detach().abs().flatten() for m in model.modules()
                        if isinstance(m, nn.BatchNorm2d) and m.weight is not None] or [torch.zeros(0)])
    return scales.numel() > 0 and bool((scales == scales[0]).all())


class _Pruner(tp.pruner.MetaPruner):
    """torch-pruning's pruner, except that rounding never leaves a layer at 0 channels."""

    def _round_to(self, n_pruned: int, current_channels: int, round_to: int) -> int:
        """How many to prune so the rest is a multiple of `round_to`, keeping at least `round_to` channels."""
        # torch-pruning rounds what is kept down, to 0 below `round_to`, and then skips the whole group unpruned
        if current_channels < round_to:
            return n_pruned
        kept = current_channels - n_pruned
        return current_channels - max(kept - kept % round_to, round_to)


@register_strategy("channels")
@dataclass
class ChannelPruning(Strategy):
    """Remove whole conv channels (coupled layers pruned together by torch-pruning's dependency graph)."""

    removes_structure: ClassVar[bool] = True  # `amount` is a fraction of what the model has now

    amount: float = param(0.3, "fraction of channels to remove, in [0, 1)")
    importance: Literal["l1", "l2", "taylor", "bn-scale"] = param("l1", "how channel groups are scored")
    scope: Literal["uniform", "global"] = param("uniform", "same ratio in every layer, or ranked across layers")
    max_layer_ratio: float = param(0.9, "with global scope, the most any one layer may lose")
    calib_batches: int = param(4, "calibration batches for the Taylor gradients")
    round_to: int = param(8, "keep a multiple of this many channels in each pruned layer, rounding down but never "
                             "below it; 8 keeps most of 16's measured speed-up at 224 px (reports/deploy-224px) while "
                             "16-channel layers stay prunable; 1: no rounding")

    def __post_init__(self) -> None:
        check_fraction("channels.amount", self.amount)
        check_fraction("channels.max_layer_ratio", self.max_layer_ratio)
        if self.importance not in IMPORTANCES:
            raise CompressorError(f"channels.importance must be one of {', '.join(IMPORTANCES)}; "
                                  f"got {self.importance!r}")
        if self.scope not in ("uniform", "global"):
            raise CompressorError(f"channels.scope must be uniform or global; got {self.scope!r}")
        if self.calib_batches < 1:
            raise CompressorError(f"channels.calib_batches must be at least 1; got {self.calib_batches}")
        check_int("channels.round_to", self.round_to)

    def check(self, model: nn.Module) -> None:
        """Fail now if `model` has no convolution to slim."""
        if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
            raise CompressorError("channels needs a model with Conv2d layers; this one has none")

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Score channel groups, remove the lowest `amount` of them, and return the smaller model."""
        self.check(model)
        if context.input_size < 1:
            raise CompressorError("channels traces the model with an example input: pass example_input=... (or a "
                                  "loader) so the input shape is known")
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        in_channels = convs[0].in_channels
        device = next(model.parameters()).device
        example = torch.zeros(1, in_channels, context.input_size, context.input_size, device=device)
        before = _channel_counts(model)
        if self.importance == "bn-scale" and self.amount > 0 and _bn_scales_tie(model):
            raise CompressorError(f"channels cannot rank channels at amount {self.amount}: every bn-scale score ties "
                                  "(an untrained model scored by bn-scale?); pick another importance")
        attention = attention_modules(model)
        pruner = _Pruner(model, example, importance=_importance(self.importance), pruning_ratio=self.amount,
                         global_pruning=self.scope == "global", max_pruning_ratio=self.max_layer_ratio,
                         ignored_layers=linears[-1:], round_to=self.round_to if self.round_to > 1 else None,
                         num_heads={m.qkv: m.num_heads for m in attention})
        if self.importance == "taylor":
            self._accumulate_gradients(model, context)
        pruner.step()
        for module in attention:  # the heads keep their count and narrow; the forward reshapes by these widths
            module.head_dim = module.qkv.out_features // (3 * module.num_heads)
            if isinstance(getattr(module, "attn_dim", None), int):
                module.attn_dim = module.num_heads * module.head_dim
        model.zero_grad(set_to_none=True)
        model.eval()
        after = _channel_counts(model)
        if self.amount > 0 and after == before and self.round_to == 1:  # with rounding, a no-op round is legitimate
            raise CompressorError(f"channels removed nothing at amount {self.amount}: every {self.importance} score "
                                  "ties (an untrained model scored by bn-scale?); pick another importance")
        layers = {name: {"channels_before": before[name], "channels_after": after[name]} for name in after}
        kept = sum(after.values()) / sum(before.values())
        unrounded = [name for name, count in after.items() if count % self.round_to]
        return StrategyOutput(model, {"channels_before": sum(before.values()), "channels_after": sum(after.values()),
                                      "channel_ratio_removed": 1 - kept, "round_to": self.round_to,
                                      "unrounded_layers": unrounded, "layers": layers})

    def _accumulate_gradients(self, model: nn.Module, context: StrategyContext) -> None:
        """Backpropagate the loss of a few calibration batches so Taylor importance has gradients."""
        model.train()
        model.zero_grad(set_to_none=True)
        loss_fn = nn.CrossEntropyLoss()
        device = next(model.parameters()).device
        for i, (x, y) in enumerate(context.calib.batches(context.input_size, 64, shuffle=True,
                                                                 seed=context.seed)):
            if i >= self.calib_batches:
                break
            loss_fn(model(x.to(device)), y.to(device)).backward()
