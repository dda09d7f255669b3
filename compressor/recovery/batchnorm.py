"""BatchNorm recalibration: running statistics re-estimated on training images after the weights changed."""

from __future__ import annotations

import torch
from torch import nn

from compressor.data.loaders import Split
from compressor.models.training import batchnorms


def recalibrate_batchnorm(model: nn.Module, split: Split, input_size: int, *, batches: int = 20,
                          batch_size: int = 128, seed: int = 0) -> int:
    """Re-estimate BatchNorm running statistics on `split` (cumulative average); weights are untouched."""
    norms = batchnorms(model)
    if not norms:
        return 0
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    device = next(model.parameters()).device
    model.train()
    seen = 0
    with torch.no_grad():
        for i, (x, _) in enumerate(split.batches(input_size, batch_size, shuffle=True, seed=seed)):
            if i >= batches:
                break
            model(x.to(device))
            seen += len(x)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()
    return seen
