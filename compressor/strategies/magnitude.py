"""Magnitude pruning: zero the conv/linear weights with the smallest absolute value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from compressor.errors import CompressorError
from compressor.strategies.registry import (
    Strategy,
    StrategyContext,
    StrategyOutput,
    check_fraction,
    param,
    register_strategy,
)
from compressor.strategies.selection import apply_masks, global_masks, layer_masks, prunable_layers, sparsity_record


@register_strategy("l1")
@dataclass
class L1Unstructured(Strategy):
    """L1-magnitude unstructured pruning of conv and linear weights, ranked globally or per layer."""

    amount: float = param(0.5, "fraction of eligible weights to zero, in [0, 1)")
    scope: Literal["global", "layer"] = param("global", "rank weights across all eligible layers, or within each")
    include_first_conv: bool = param(False, "also prune the first (stem) convolution")
    include_classifier: bool = param(False, "also prune the final linear classifier")

    def __post_init__(self) -> None:
        check_fraction("l1.amount", self.amount)
        if self.scope not in ("global", "layer"):
            raise CompressorError(f"l1.scope must be global or layer; got {self.scope!r}")

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Zero the smallest-|w| weights of the eligible layers; biases and BatchNorm are never touched."""
        layers = prunable_layers(model, include_first_conv=self.include_first_conv,
                                 include_classifier=self.include_classifier)
        scores = {name: layer.weight.detach().abs() for name, layer in layers.items()}
        select = global_masks if self.scope == "global" else layer_masks
        masks = select(scores, self.amount)
        apply_masks(layers, masks)
        return StrategyOutput(model, sparsity_record(masks))
