"""Model complexity: parameter counts, weight sparsity and MACs (torch-pruning's counter)."""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

from compressor.models import PRUNABLE_TYPES


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Total and non-zero parameter counts over every parameter tensor."""
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return {"params_total": total, "params_nonzero": nonzero}


def weight_sparsity(model: nn.Module) -> dict[str, float]:
    """Zero fraction of all conv/linear weights (`sparsity`) and of every parameter (`sparsity_all`)."""
    weights = [m.weight for m in model.modules() if isinstance(m, PRUNABLE_TYPES)]
    w_total = sum(w.numel() for w in weights)
    w_zero = sum(w.numel() - int(torch.count_nonzero(w)) for w in weights)
    counts = parameter_counts(model)
    return {"sparsity": w_zero / w_total if w_total else 0.0,
            "sparsity_all": 1.0 - counts["params_nonzero"] / counts["params_total"]}


def dense_macs(model: nn.Module, in_channels: int, input_size: int) -> int:
    """Multiply-accumulates of one forward pass at batch 1, counting every weight (zeros included)."""
    device = next(model.parameters()).device
    example = torch.zeros(1, in_channels, input_size, input_size, device=device)
    was_training = model.training
    model.eval()
    macs, _ = tp.utils.count_ops_and_params(model, example)
    model.train(was_training)
    return int(macs)
