"""Candidate per-layer allocations for layer-sensitive pruning and the calibration judgement that picks one.

Each candidate is a set of keep-masks reaching the same global amount. It is judged by pruning the model,
re-estimating BatchNorm statistics on training images, and measuring cross-entropy on held-out calibration batches;
the model's weights and buffers are restored afterwards, so judging leaves it as it was.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from compressor.models.training import batchnorms
from compressor.recovery.batchnorm import recalibrate_batchnorm
from compressor.strategies.registry import StrategyContext
from compressor.strategies.selection import apply_masks, global_masks, lamp_scores

Batches = list[tuple[torch.Tensor, torch.Tensor]]
Masks = dict[str, torch.Tensor]


@contextlib.contextmanager
def batch_statistics(model: nn.Module) -> Iterator[None]:
    """BatchNorm layers normalize with each batch's own statistics; their running buffers stay untouched."""
    norms = batchnorms(model)
    saved = [(norm.training, norm.track_running_stats) for norm in norms]
    for norm in norms:
        norm.train()
        norm.track_running_stats = False
    try:
        yield
    finally:
        for norm, (training, tracking) in zip(norms, saved):
            norm.train(training)
            norm.track_running_stats = tracking


def calib_scores(model: nn.Module, context: StrategyContext, batches: Batches, *,
                 fresh_statistics: bool = False) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of `model` on pre-built calibration batches.

    With `fresh_statistics`, BatchNorm uses each batch's statistics, as if recalibrated for the current weights.
    """
    model.eval()
    correct = total = 0
    loss = 0.0
    with torch.inference_mode(), batch_statistics(model) if fresh_statistics else contextlib.nullcontext():
        for x, y in batches:
            logits = model(x.to(context.device)).cpu()
            correct += int((logits.argmax(1) == y).sum())
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            total += len(y)
    return correct / total, loss / total


def magnitude_masks(layers: dict[str, nn.Module], amount: float) -> Masks:
    """Global magnitude: the smallest |w| across all layers together (what `l1` with scope global zeroes)."""
    return global_masks({name: layer.weight.detach().abs() for name, layer in layers.items()}, amount)


def lamp_masks(layers: dict[str, nn.Module], amount: float) -> Masks:
    """Global pruning on LAMP scores, which normalize each weight's magnitude by its layer's larger weights."""
    return global_masks({name: lamp_scores(layer.weight) for name, layer in layers.items()}, amount)


def ratio_masks(layers: dict[str, nn.Module], ratios: dict[str, float]) -> Masks:
    """Each layer's smallest |w| at its own ratio."""
    return {name: global_masks({name: layer.weight.detach().abs()}, ratios[name])[name]
            for name, layer in layers.items()}


def mask_ratios(masks: Masks) -> dict[str, float]:
    """The fraction each mask zeroes, by layer."""
    return {name: float((~keep).sum()) / keep.numel() for name, keep in masks.items()}


def judge(model: nn.Module, layers: dict[str, nn.Module], masks: Masks, context: StrategyContext,
          batches: Batches) -> dict[str, Any]:
    """Calibration loss and accuracy of `model` pruned by `masks` after BatchNorm recalibration; model unchanged."""
    saved = copy.deepcopy(model.state_dict())
    try:
        apply_masks(layers, masks)
        recalibrate_batchnorm(model, context.train, context.input_size, seed=context.seed)
        accuracy, loss = calib_scores(model, context, batches)
    finally:
        model.load_state_dict(saved)
    return {"calib_loss": loss, "calib_accuracy": accuracy,
            "ratios": {name: round(ratio, 6) for name, ratio in mask_ratios(masks).items()}}
