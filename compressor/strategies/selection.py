"""Score -> select -> apply for unstructured pruning: which weights are eligible, which to zero, zeroing them."""

from __future__ import annotations

import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.models.zoo import PRUNABLE_TYPES


def prunable_layers(model: nn.Module, *, include_first_conv: bool = False,
                    include_classifier: bool = False) -> dict[str, nn.Module]:
    """Conv and linear layers eligible for pruning, by name; the first conv and last linear are opt-in."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}
    convs = [name for name, m in layers.items() if isinstance(m, nn.Conv2d)]
    linears = [name for name, m in layers.items() if isinstance(m, nn.Linear)]
    if convs and not include_first_conv:
        layers.pop(convs[0])
    if linears and not include_classifier:
        layers.pop(linears[-1])
    if not layers:
        raise CompressorError("the model has no conv or linear layer to prune besides its first conv and its "
                              "classifier; allow those with include_first_conv=true or include_classifier=true")
    return layers


def global_masks(scores: dict[str, torch.Tensor], amount: float) -> dict[str, torch.Tensor]:
    """Keep-masks zeroing the round(amount * N) lowest scores across all tensors together."""
    flat = torch.cat([s.detach().flatten() for s in scores.values()])
    keep = torch.ones_like(flat, dtype=torch.bool)
    k = round(amount * flat.numel())
    if k > 0:
        keep[torch.topk(flat, k, largest=False).indices] = False
    masks, offset = {}, 0
    for name, score in scores.items():
        masks[name] = keep[offset:offset + score.numel()].view_as(score)
        offset += score.numel()
    return masks


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP scores of one layer (Lee et al. 2021): w² over the sum of w² of the layer's weights with |v| >= |w|.

    The largest weight scores 1; scores grow with |w| within a layer and are comparable across layers, so a global
    threshold on them sets every layer's sparsity. Tied magnitudes share one denominator (all of them count).
    Scores are float64, so near-equal scores of different layers keep their order.
    """
    squared = weight.detach().flatten().double() ** 2
    ordered, order = torch.sort(squared)
    suffix = ordered.flip(0).cumsum(0).flip(0)
    denominator = suffix[torch.searchsorted(ordered, ordered)]
    scores = torch.empty_like(squared)
    scores[order] = ordered / denominator.clamp_min(torch.finfo(torch.float64).tiny)
    return scores.view_as(weight)


def layer_masks(scores: dict[str, torch.Tensor], amount: float) -> dict[str, torch.Tensor]:
    """Keep-masks zeroing the round(amount * n) lowest scores within each tensor."""
    return {name: global_masks({name: score}, amount)[name] for name, score in scores.items()}


def nm_masks(score: torch.Tensor, n: int, m: int) -> torch.Tensor | None:
    """Keep-mask with the n highest scores in every group of m consecutive input weights; None if in_dim % m.

    Groups run along the input dimension: for a conv weight [out, in, kh, kw], the m weights of consecutive input
    channels at one (out, kh, kw) position form a group; for a linear weight [out, in], m consecutive inputs.
    """
    moved = score.movedim(1, -1) if score.ndim > 2 else score
    if moved.shape[-1] % m:
        return None
    groups = moved.reshape(-1, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, torch.topk(groups, n, dim=1).indices, True)
    keep = keep.view(moved.shape)
    return keep.movedim(-1, 1) if score.ndim > 2 else keep


def apply_masks(layers: dict[str, nn.Module], masks: dict[str, torch.Tensor]) -> None:
    """Zero the weights outside each layer's keep-mask, in place and permanently.

    `masked_fill_` writes +0.0; multiplying by the mask would leave -0.0 for negative weights, which bit-exact
    sparse encodings must then store as values.
    """
    with torch.no_grad():
        for name, keep in masks.items():
            layers[name].weight.masked_fill_(~keep.to(layers[name].weight.device), 0.0)


def sparsity_record(masks: dict[str, torch.Tensor]) -> dict[str, object]:
    """Per-layer and overall sparsity of the selected masks, for the strategy's record."""
    per_layer = {name: {"params": keep.numel(), "zeroed": int((~keep).sum()),
                        "sparsity": round(float((~keep).sum()) / keep.numel(), 6)} for name, keep in masks.items()}
    total = sum(v["params"] for v in per_layer.values())
    zeroed = sum(v["zeroed"] for v in per_layer.values())
    return {"eligible_params": total, "zeroed": zeroed, "sparsity": zeroed / total if total else 0.0,
            "layers": per_layer}
