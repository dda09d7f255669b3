"""Random unstructured pruning: the floor any real criterion must beat, packaged as a compressor plugin."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compressor import (
    Strategy,
    StrategyContext,
    StrategyOutput,
    apply_masks,
    check_fraction,
    global_masks,
    param,
    prunable_layers,
    sparsity_record,
)


@dataclass
class RandomUnstructured(Strategy):
    """Zero a uniformly random fraction of the eligible conv/linear weights."""

    amount: float = param(0.5, "fraction of eligible weights to zero, in [0, 1)")

    def __post_init__(self) -> None:
        check_fraction("random.amount", self.amount)

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Score every eligible weight with seeded uniform noise and zero the lowest scores."""
        generator = torch.Generator().manual_seed(context.seed)
        layers = prunable_layers(model)
        scores = {name: torch.rand(layer.weight.shape, generator=generator) for name, layer in layers.items()}
        masks = global_masks(scores, self.amount)
        apply_masks(layers, masks)
        return StrategyOutput(model, sparsity_record(masks))
