"""Supervised contrastive loss (Khosla et al. 2020, L_out, eq. 2) and its unsupervised SimCLR case."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def anchor_losses(anchors: torch.Tensor, anchor_labels: torch.Tensor, contrast: torch.Tensor,
                  contrast_labels: torch.Tensor, self_index: torch.Tensor,
                  temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-anchor loss -mean_{p in P(i)} log softmax_p and a mask of anchors that have at least one positive.

    `anchors` [n, D] and `contrast` [N, D] are L2-normalized; anchor i is row `self_index[i]` of `contrast`, which
    is left out of its denominator and its positives. The positives' sum is taken from per-label sums of the
    contrast rows, so no n x N positive mask is built.
    """
    logits = anchors @ contrast.T / temperature
    rows = torch.arange(len(anchors), device=anchors.device)
    logits = logits.index_put((rows, self_index), logits.new_tensor(float("-inf")))
    log_denominator = torch.logsumexp(logits, dim=1)
    _, label_ids = torch.unique(torch.cat([anchor_labels, contrast_labels]), return_inverse=True)
    anchor_ids, contrast_ids = label_ids[:len(anchors)], label_ids[len(anchors):]
    n_labels = int(label_ids.max()) + 1
    sums = contrast.new_zeros(n_labels, contrast.shape[1]).index_add(0, contrast_ids, contrast)
    counts = torch.bincount(contrast_ids, minlength=n_labels)
    positives = counts[anchor_ids] - 1
    positive_logits = (anchors * (sums[anchor_ids] - contrast[self_index])).sum(1) / temperature
    has_positive = positives > 0
    mean_log_prob = positive_logits / positives.clamp(min=1) - log_denominator
    return -mean_log_prob, has_positive


def flatten_views(features: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalize [B, V, D] features in fp32 (fp64 kept) and lay them out view-major as [V*B, D] with one label per row.

    Without labels every sample is its own class (SimCLR: the positives are the other views of the same image).
    """
    if features.ndim != 3:
        raise ValueError(f"features must be [batch, views, dim]; got shape {tuple(features.shape)}")
    batch, views, _ = features.shape
    if labels is None:
        labels = torch.arange(batch, device=features.device)
    elif labels.shape != (batch,):
        raise ValueError(f"labels must have shape [{batch}]; got {tuple(labels.shape)}")
    precise = features if features.dtype == torch.float64 else features.float()
    flat = F.normalize(precise, dim=-1).transpose(0, 1).reshape(views * batch, -1)
    return flat, labels.to(features.device).repeat(views)


def supcon_loss(features: torch.Tensor, labels: torch.Tensor | None = None, *, temperature: float = 0.1,
                base_temperature: float | None = None) -> torch.Tensor:
    """SupCon loss of [batch, views, dim] embeddings, averaged over anchors that have a positive.

    Embeddings are L2-normalized here, so the loss does not depend on their scale. `labels=None` gives SimCLR's
    NT-Xent. The result is scaled by `temperature / base_temperature` (1 by default, as in the paper's eq. 2).
    """
    flat, flat_labels = flatten_views(features, labels)
    index = torch.arange(len(flat), device=flat.device)
    losses, valid = anchor_losses(flat, flat_labels, flat, flat_labels, index, temperature)
    scale = temperature / (base_temperature or temperature)
    if not bool(valid.any()):
        return flat.sum() * 0.0
    return scale * losses[valid].mean()


class SupConLoss(nn.Module):
    """Module form of `supcon_loss` (temperature fixed at construction)."""

    def __init__(self, temperature: float = 0.1, base_temperature: float | None = None) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive; got {temperature}")
        self.temperature = temperature
        self.base_temperature = base_temperature

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return supcon_loss(features, labels, temperature=self.temperature, base_temperature=self.base_temperature)
