"""Optimal Brain Surgeon on top of any `LayerInverse`: saliencies, selections, weight updates, N:M groups.

For weights at a trained point the loss change of δw is ½ δwᵀFδw. Removing weight q costs ρ_q = w_q² / (2[F⁻¹]_qq)
when the others move by δw = −w_q F⁻¹e_q / [F⁻¹]_qq; removing a group S costs ρ_S = ½ w_Sᵀ([F⁻¹]_SS)⁻¹ w_S with
δw = −F⁻¹E_S([F⁻¹]_SS)⁻¹ w_S. Several weights (or groups) removed in one step use the sum of their updates, which
ignores their correlations; `one_shot` therefore prunes in several steps and rebuilds F⁻¹ between them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from compressor.strategies.second_order.fisher import matrix_to_weight, weight_matrix
from compressor.strategies.second_order.inverse import LayerInverse

EPS = 1e-12


def saliency(weight: torch.Tensor, inverse: LayerInverse) -> torch.Tensor:
    """ρ_q = w_q² / (2 [F⁻¹]_qq) for every weight of an (out, in) matrix."""
    return weight.double() ** 2 / (2 * inverse.diag().double().clamp_min(EPS))


def obs_update(weight: torch.Tensor, inverse: LayerInverse, pruned: torch.Tensor) -> torch.Tensor:
    """The summed single-weight OBS updates for removing the weights where `pruned` is True (the rest move)."""
    scaled = torch.where(pruned, weight / inverse.diag().to(weight.dtype).clamp_min(EPS), torch.zeros_like(weight))
    return -inverse.mul(scaled)


def global_keep(scores: dict[str, torch.Tensor], keep: dict[str, torch.Tensor], prune_total: int
                ) -> dict[str, torch.Tensor]:
    """New keep-masks with `prune_total` weights pruned overall: the already pruned plus the lowest scores."""
    flat = torch.cat([torch.where(keep[n], scores[n].double(), -torch.inf).flatten() for n in scores])
    new_keep = torch.ones_like(flat, dtype=torch.bool)
    if prune_total > 0:
        new_keep[torch.topk(flat, min(prune_total, flat.numel()), largest=False).indices] = False
    out, offset = {}, 0
    for name, score in scores.items():
        out[name] = new_keep[offset:offset + score.numel()].view_as(score)
        offset += score.numel()
    return out


def nm_groups(shape: tuple[int, int], m: int, device: torch.device | str | None = None
              ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Rows (G,) and columns (G, m) of the groups of m consecutive inputs of an (out, in) matrix; None if in % m."""
    out_dim, in_dim = shape
    if in_dim % m:
        return None
    rows = torch.arange(out_dim, device=device).repeat_interleave(in_dim // m)
    cols = torch.arange(in_dim, device=device).reshape(-1, m).repeat(out_dim, 1)
    return rows, cols


def nm_choice(weight: torch.Tensor, inverse: LayerInverse, n: int, m: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """For each group of m inputs, the m − n weights whose joint removal costs least (group OBS).

    Returns the keep-mask, the group saliencies summed per group (G,) and the update δw; None if in % m.
    """
    device = weight.device
    groups = nm_groups(tuple(weight.shape), m, device)
    if groups is None:
        return None
    rows, cols = groups
    block = inverse.group_blocks(rows, cols).double()  # (G, m, m)
    w = weight.double()[rows[:, None], cols]  # (G, m)
    subsets = torch.tensor(list(itertools.combinations(range(m), m - n)), device=device)  # (C, s)
    sub_block = block[:, subsets[:, :, None], subsets[:, None, :]]  # (G, C, s, s)
    sub_w = w[:, subsets]  # (G, C, s)
    eye = torch.eye(m - n, dtype=torch.float64, device=device)
    solved = torch.linalg.solve(sub_block + EPS * eye, sub_w[..., None])[..., 0]
    costs = 0.5 * (sub_w * solved).sum(-1)  # (G, C)
    best = costs.argmin(dim=1)
    chosen = subsets[best]  # (G, s)
    z = torch.zeros_like(w)
    picked = torch.arange(len(best), device=device)
    z.scatter_(1, chosen, solved[picked, best])
    z_matrix = torch.zeros_like(weight, dtype=torch.float64)
    z_matrix[rows[:, None], cols] = z
    keep = torch.ones_like(weight, dtype=torch.bool)
    keep[rows[:, None], cols.gather(1, chosen)] = False
    update = -inverse.mul(z_matrix.to(weight.dtype))
    return keep, costs[picked, best], update


@dataclass
class PruneStep:
    """What one pruning step did, for the report."""

    sparsity: float
    pruned: int
    predicted_loss_increase: float
    measured_loss_increase: float | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


InverseBuilder = Callable[[dict[str, torch.Tensor]], dict[str, LayerInverse]]


def _weights(layers: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {name: weight_matrix(layer.weight.detach()) for name, layer in layers.items()}


def _write(layers: dict[str, nn.Module], matrices: dict[str, torch.Tensor], keep: dict[str, torch.Tensor]) -> None:
    """Store updated weight matrices, with every pruned weight exactly +0.0."""
    with torch.no_grad():
        for name, layer in layers.items():
            matrix = matrices[name].to(layer.weight.dtype).masked_fill(~keep[name], 0.0)
            layer.weight.copy_(matrix_to_weight(matrix, tuple(layer.weight.shape)))


def density_schedule(start: float, target: float, steps: int) -> list[float]:
    """Geometric densities from `start` to `target` in `steps` steps (each step keeps the same fraction)."""
    return [start * (target / start) ** ((t + 1) / steps) for t in range(steps)]


def prune_unstructured(layers: dict[str, nn.Module], amount: float, build: InverseBuilder, steps: int,
                       *, update: bool = True, loss: Callable[[], float] | None = None,
                       on_step: Callable[[PruneStep], None] | None = None) -> tuple[dict[str, torch.Tensor],
                                                                                   list[PruneStep]]:
    """Global OBS pruning to `amount` sparsity in `steps` geometric steps, rebuilding F⁻¹ before each.

    Weights already at zero count as pruned and stay pruned. `loss` (a calibration loss) is measured around each
    step to compare with the predicted increase.
    """

    keep = {name: w != 0 for name, w in _weights(layers).items()}
    total = sum(k.numel() for k in keep.values())
    start = sum(int(k.sum()) for k in keep.values()) / total
    target = 1.0 - amount
    history: list[PruneStep] = []
    if target >= start:
        return keep, history
    for density in density_schedule(start, target, steps):
        began = time.perf_counter()
        before = loss() if loss else None
        inverses = build(keep)
        matrices = _weights(layers)
        scores = {name: saliency(matrices[name], inverses[name]) for name in layers}
        prune_total = total - round(density * total)
        new_keep = global_keep(scores, keep, prune_total)
        predicted = 0.0
        for name in layers:
            newly = keep[name] & ~new_keep[name]
            predicted += float(scores[name][newly].sum())
            if update:
                matrices[name] = matrices[name] + obs_update(matrices[name], inverses[name], newly)
        _write(layers, matrices, new_keep)
        keep = new_keep
        after = loss() if loss else None
        step = PruneStep(sparsity=1 - density, pruned=prune_total, predicted_loss_increase=predicted,
                         measured_loss_increase=None if before is None else after - before,
                         seconds=time.perf_counter() - began)
        history.append(step)
        if on_step:
            on_step(step)
    return keep, history


def prune_nm(layers: dict[str, nn.Module], n: int, m: int, build: InverseBuilder, *,
             loss: Callable[[], float] | None = None) -> tuple[dict[str, torch.Tensor], PruneStep, list[str]]:
    """N:M pruning with group OBS: per group of m inputs, remove the m − n weights of least joint saliency.

    Layers whose input width is not a multiple of m are left dense and returned as skipped.
    """

    began = time.perf_counter()
    before = loss() if loss else None
    keep = {name: w != 0 for name, w in _weights(layers).items()}
    inverses = build(keep)
    matrices = _weights(layers)
    predicted, skipped = 0.0, []
    for name in layers:
        choice = nm_choice(matrices[name], inverses[name], n, m)
        if choice is None:
            skipped.append(name)
            continue
        keep[name], costs, update = choice
        predicted += float(costs.sum())
        matrices[name] = matrices[name] + update
    _write(layers, matrices, keep)
    after = loss() if loss else None
    total = sum(k.numel() for k in keep.values())
    pruned = total - sum(int(k.sum()) for k in keep.values())
    return keep, PruneStep(sparsity=pruned / total, pruned=pruned, predicted_loss_increase=predicted,
                           measured_loss_increase=None if before is None else after - before,
                           seconds=time.perf_counter() - began), skipped
