"""Model complexity: parameter counts, sparsity, dense MACs (torch-pruning) and the MACs sparse kernels would do."""

from __future__ import annotations

from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from compressor.models.zoo import PRUNABLE_TYPES


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


def _example(model: nn.Module, in_channels: int, input_size: int) -> torch.Tensor:
    return torch.zeros(1, in_channels, input_size, input_size, device=next(model.parameters()).device)


def dense_macs(model: nn.Module, in_channels: int, input_size: int) -> int:
    """Multiply-accumulates of one image (torch-pruning's counter), counting every weight, zeros included."""
    was_training = model.training
    model.eval()
    macs, _ = tp.utils.count_ops_and_params(model, _example(model, in_channels, input_size))
    model.train(was_training)
    return int(macs)


def layer_table(model: nn.Module, in_channels: int, input_size: int) -> list[dict[str, Any]]:
    """Per conv/linear layer at batch 1: weight shape, params, sparsity, dense MACs and non-zero-weight MACs.

    Each weight of a conv is used once per output position, so MACs = weights x output positions; a kernel that
    skips zero weights does non-zero weights x output positions.
    """
    rows: list[dict[str, Any]] = []
    handles = []

    def hook(name: str) -> Any:
        def record(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            positions = output[0].numel() // module.weight.shape[0]
            params = module.weight.numel()
            nonzero = int(torch.count_nonzero(module.weight))
            rows.append({"layer": name, "type": type(module).__name__, "shape": list(module.weight.shape),
                         "params": params, "nonzero": nonzero, "sparsity": 1 - nonzero / params,
                         "macs": params * positions, "macs_sparse": nonzero * positions})
        return record

    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(_example(model, in_channels, input_size))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return rows


def complexity(model: nn.Module, in_channels: int, input_size: int) -> dict[str, Any]:
    """Parameter counts, sparsity, dense MACs, sparse-kernel MACs and the per-layer table."""
    layers = layer_table(model, in_channels, input_size)
    macs = dense_macs(model, in_channels, input_size)
    layer_macs = sum(r["macs"] for r in layers)
    skipped = layer_macs - sum(r["macs_sparse"] for r in layers)
    return {**parameter_counts(model), **weight_sparsity(model), "macs": macs, "macs_sparse": macs - skipped,
            "input_size": input_size, "layers": layers}
