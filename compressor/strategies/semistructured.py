"""N:M semi-structured sparsity (2:4 by default), the pattern sparse tensor cores accelerate."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.strategies.registry import Strategy, StrategyContext, StrategyOutput, param, register_strategy
from compressor.strategies.selection import apply_masks, nm_masks, prunable_layers, sparsity_record


@register_strategy("nm")
@dataclass
class NMSparsity(Strategy):
    """N:M sparsity: in every group of M consecutive input weights keep the N largest magnitudes."""

    n: int = param(2, "weights kept per group")
    m: int = param(4, "group size along the input dimension")
    include_first_conv: bool = param(False, "also prune the first (stem) convolution")
    include_classifier: bool = param(False, "also prune the final linear classifier")

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and isinstance(self.m, int) and 1 <= self.n < self.m):
            raise CompressorError(f"nm needs integers 1 <= n < m; got n={self.n!r}, m={self.m!r}")

    def _masks(self, model: nn.Module) -> tuple[dict[str, nn.Module], dict[str, torch.Tensor], dict[str, str]]:
        layers = prunable_layers(model, include_first_conv=self.include_first_conv,
                                 include_classifier=self.include_classifier)
        masks, skipped = {}, {}
        for name, layer in layers.items():
            keep = nm_masks(layer.weight.detach().abs(), self.n, self.m)
            if keep is None:
                skipped[name] = f"input dimension {layer.weight.shape[1]} is not a multiple of {self.m}"
            else:
                masks[name] = keep
        if not masks:
            raise CompressorError(f"nm {self.n}:{self.m} fits no layer of this model: {skipped}")
        return layers, masks, skipped

    def check(self, model: nn.Module) -> None:
        """Fail now if no eligible layer's input dimension is a multiple of m."""
        self._masks(model)

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Mask every eligible layer whose input dimension is a multiple of m; list the layers that are not."""
        layers, masks, skipped = self._masks(model)
        apply_masks(layers, masks)
        return StrategyOutput(model, {"pattern": f"{self.n}:{self.m}", **sparsity_record(masks),
                                      "skipped_layers": skipped})
