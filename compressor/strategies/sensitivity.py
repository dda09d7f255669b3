"""Layer-sensitive pruning: scan how much each layer's pruning hurts, then give robust layers more sparsity.

The scan prunes each eligible layer alone (L1 magnitude) at several ratios and measures the accuracy drop and the
cross-entropy increase on the calibration split (held out of training; never the test split). Per-layer ratios are
then chosen greedily on the loss increase, which keeps moving where accuracy on a small split is flat: the next
5 % step goes to the layer whose interpolated loss grows least per weight removed, until the requested global
fraction of eligible weights is reached (the last step is cut to hit it exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pathlib import Path

import numpy as np
import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.fileio import model_fingerprint, read_cached_json, write_json_atomic
from compressor.registry import StrategyContext, StrategyOutput, check_fraction, param, register_strategy
from compressor.strategies.selection import apply_masks, global_masks, prunable_layers, sparsity_record

STEP = 0.05
SCAN_VERSION = 2


Batches = list[tuple[torch.Tensor, torch.Tensor]]


def calib_scores(model: nn.Module, context: StrategyContext, batches: Batches) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of `model` on pre-built calibration batches."""
    model.eval()
    correct = total = 0
    loss = 0.0
    with torch.inference_mode():
        for x, y in batches:
            logits = model(x.to(context.device)).cpu()
            correct += int((logits.argmax(1) == y).sum())
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            total += len(y)
    return correct / total, loss / total


def scan(model: nn.Module, layers: dict[str, nn.Module], ratios: tuple[float, ...], context: StrategyContext,
         batches: Batches) -> dict[str, Any]:
    """Accuracy drop and loss increase on the calibration batches when each layer alone is L1-pruned."""
    base_accuracy, base_loss = calib_scores(model, context, batches)
    drops: dict[str, list[float]] = {}
    loss_increase: dict[str, list[float]] = {}
    for name, layer in layers.items():
        original = layer.weight.detach().clone()
        drops[name], loss_increase[name] = [], []
        for ratio in ratios:
            apply_masks({name: layer}, global_masks({name: original.abs()}, ratio))
            accuracy, loss = calib_scores(model, context, batches)
            drops[name].append(base_accuracy - accuracy)
            loss_increase[name].append(loss - base_loss)
            with torch.no_grad():
                layer.weight.copy_(original)
    return {"baseline_accuracy": base_accuracy, "baseline_loss": base_loss, "ratios": list(ratios),
            "drops": drops, "loss_increase": loss_increase}


def allocate(drops: dict[str, list[float]], ratios: list[float], sizes: dict[str, int],
             amount: float) -> dict[str, float]:
    """Per-layer ratios reaching `amount` of all weights, greedily minimizing the sum of interpolated costs.

    `drops` holds each layer's cost (the calibration loss increase) at each scanned ratio.
    """
    grid = np.round(np.arange(0.0, max(ratios) + 1e-9, STEP), 6)
    predicted = {name: np.maximum.accumulate(np.interp(grid, [0.0, *ratios], [0.0, *drops[name]]))
                 for name in drops}
    remaining = amount * sum(sizes.values())
    level = {name: 0 for name in drops}
    ratio = {name: 0.0 for name in drops}
    while remaining >= 0.5:
        candidates = [(float(predicted[n][level[n] + 1] - predicted[n][level[n]]) / sizes[n], n)
                      for n in drops if level[n] + 1 < len(grid)]
        if not candidates:
            raise CompressorError(f"layer-sensitive cannot reach amount {amount}: every layer is at the scan's "
                                  f"largest ratio {max(ratios)}")
        _, name = min(candidates)
        take = min(STEP, remaining / sizes[name])
        level[name] += 1
        ratio[name] += take
        remaining -= take * sizes[name]
    return ratio


def _read_cache(path: Path | None, names: list[str]) -> dict[str, Any] | None:
    """A cached scan covering `names`, or None when there is none or it is unreadable or incomplete."""
    result = read_cached_json(path)
    complete = isinstance(result, dict) and all(
        isinstance(result.get(key), dict) and set(result[key]) == set(names) for key in ("drops", "loss_increase"))
    return result if complete else None


def _scan_key(model: nn.Module, layers: list[str], ratios: tuple[float, ...], calib_samples: int,
              context: StrategyContext) -> str:
    """The scan's cache key: every weight and buffer (BatchNorm statistics change the scan too) and its settings."""
    facts = [SCAN_VERSION, layers, list(ratios), calib_samples, context.data_key, context.input_size,
             len(context.calib)]
    return model_fingerprint(model, facts)


@register_strategy("layer-sensitive")
@dataclass
class LayerSensitive:
    """Per-layer sparsity from a measured sensitivity scan: robust layers are pruned more, fragile ones less."""

    amount: float = param(0.5, "fraction of eligible weights to zero overall, in [0, 1)")
    ratios: str = param("0.3,0.5,0.7,0.9", "comma-separated ratios each layer is scanned at")
    calib_samples: int = param(512, "calibration images the scan evaluates (from the calib split)")
    include_first_conv: bool = param(False, "also prune the first (stem) convolution")
    include_classifier: bool = param(False, "also prune the final linear classifier")

    def __post_init__(self) -> None:
        check_fraction("layer-sensitive.amount", self.amount)
        try:
            values = self.ratio_values
        except ValueError:
            raise CompressorError(f"layer-sensitive.ratios must be numbers separated by commas; "
                                  f"got {self.ratios!r}") from None
        for value in values:
            check_fraction("each of layer-sensitive.ratios", value)
        if not values or values[-1] < self.amount:
            raise CompressorError(f"layer-sensitive.ratios must reach at least the amount {self.amount}; "
                                  f"got {self.ratios!r}")
        if self.calib_samples < 1:
            raise CompressorError(f"layer-sensitive.calib_samples must be at least 1; got {self.calib_samples}")

    @property
    def ratio_values(self) -> tuple[float, ...]:
        """The scan ratios as sorted floats."""
        return tuple(sorted(float(r) for r in str(self.ratios).split(",")))

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Scan (or reuse the cached scan), allocate per-layer ratios, prune each layer by L1 at its ratio."""
        layers = prunable_layers(model, include_first_conv=self.include_first_conv,
                                 include_classifier=self.include_classifier)
        batches = []
        for x, y in context.calib.batches(context.input_size, 256):
            batches.append((x, y))
            if sum(len(b[1]) for b in batches) >= self.calib_samples:
                break
        ratios = self.ratio_values
        cache = (context.cache_dir / "sensitivity" / f"{_scan_key(model, list(layers), ratios, self.calib_samples, context)}.json"
                 if context.cache_dir else None)
        result, cached = _read_cache(cache, list(layers)), True
        if result is None:
            result, cached = scan(model, layers, ratios, context, batches), False
            if cache is not None:
                write_json_atomic(result, cache)
        sizes = {name: layer.weight.numel() for name, layer in layers.items()}
        chosen = allocate(result["loss_increase"], result["ratios"], sizes, self.amount)
        masks = {name: global_masks({name: layers[name].weight.detach().abs()}, chosen[name])[name] for name in layers}
        apply_masks(layers, masks)
        record = sparsity_record(masks)
        for name, info in record["layers"].items():
            info["chosen_ratio"] = chosen[name]
            info["scan_drops"] = result["drops"][name]
            info["scan_loss_increase"] = result["loss_increase"][name]
        return StrategyOutput(model, {**record, "sensitivity": {**result, "cached": cached,
                                                                "cache_file": str(cache) if cache else None}})

