"""Layer-sensitive pruning: choose per-layer sparsities among candidate allocations by held-out calibration loss.

Candidates, all reaching the same global fraction of eligible weights:
- global: global magnitude (exactly what `l1` with scope global zeroes);
- lamp: global pruning on LAMP scores (Lee et al. 2021), magnitudes normalized within each layer;
- scan: the greedy allocation from a sensitivity scan, which prunes each eligible layer alone (L1) at several
  ratios and measures the cross-entropy increase on calibration batches, BatchNorm normalizing with each batch's
  own statistics (as if recalibrated after that pruning). The next step (5 % or up to the largest scanned ratio)
  goes to the layer whose interpolated loss grows least per weight removed until the amount is reached;
- blend: each layer's ratio halfway between lamp's and scan's.
Each candidate is judged by pruning, re-estimating BatchNorm statistics on training images and measuring
cross-entropy on the calibration split (held out of training; never the test split); the lowest loss wins.
Layers interact (pruning one changes what another's pruning costs), so the joint judgement, not the per-layer
scan, has the last word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from compressor._util.fileio import model_fingerprint, read_cached_json, write_json_atomic
from compressor.errors import CompressorError
from compressor.strategies.candidates import (
    Batches,
    Masks,
    calib_scores,
    judge,
    lamp_masks,
    magnitude_masks,
    mask_ratios,
    ratio_masks,
)
from compressor.strategies.registry import (
    Strategy,
    StrategyContext,
    StrategyOutput,
    check_fraction,
    check_int,
    param,
    register_strategy,
)
from compressor.strategies.selection import apply_masks, global_masks, prunable_layers, sparsity_record

__all__ = ["LayerSensitive", "allocate", "calib_scores", "scan"]

STEP = 0.05
SCAN_VERSION = 3
ALLOCATIONS = ("auto", "global", "lamp", "scan", "blend")
CALIB_SEED = 0  # the calibration images are a fixed shuffled subset, whatever the run's seed (the scan is cached)


def scan(model: nn.Module, layers: dict[str, nn.Module], ratios: tuple[float, ...], context: StrategyContext,
         batches: Batches) -> dict[str, Any]:
    """Accuracy drop and loss increase on the calibration batches when each layer alone is L1-pruned.

    BatchNorm normalizes with each batch's statistics, so a layer is not blamed for statistics gone stale.
    """
    base_accuracy, base_loss = calib_scores(model, context, batches, fresh_statistics=True)
    drops: dict[str, list[float]] = {}
    loss_increase: dict[str, list[float]] = {}
    with context.progress("layer-sensitive: scan", len(layers) * len(ratios)) as advance:
        for name, layer in layers.items():
            original = layer.weight.detach().clone()
            drops[name], loss_increase[name] = [], []
            for ratio in ratios:
                apply_masks({name: layer}, global_masks({name: original.abs()}, ratio))
                accuracy, loss = calib_scores(model, context, batches, fresh_statistics=True)
                drops[name].append(base_accuracy - accuracy)
                loss_increase[name].append(loss - base_loss)
                with torch.no_grad():
                    layer.weight.copy_(original)
                advance()
    return {"baseline_accuracy": base_accuracy, "baseline_loss": base_loss, "ratios": list(ratios),
            "drops": drops, "loss_increase": loss_increase}


def allocate(drops: dict[str, list[float]], ratios: list[float], sizes: dict[str, int],
             amount: float) -> dict[str, float]:
    """Per-layer ratios reaching `amount` of all weights, greedily minimizing the sum of interpolated costs.

    `drops` holds each layer's cost (the calibration loss increase) at each scanned ratio. The grid runs in 5 %
    steps and ends at the largest scanned ratio.
    """
    top = max(ratios)
    grid = np.unique(np.round(np.append(np.arange(0.0, top, STEP), top), 6))
    predicted = {name: np.maximum.accumulate(np.interp(grid, [0.0, *ratios], [0.0, *drops[name]]))
                 for name in drops}
    remaining = amount * sum(sizes.values())
    level = {name: 0 for name in drops}
    ratio = {name: 0.0 for name in drops}
    while remaining >= 0.5:
        candidates = [(float(predicted[n][level[n] + 1] - predicted[n][level[n]])
                       / (sizes[n] * (grid[level[n] + 1] - grid[level[n]])), n)
                      for n in drops if level[n] + 1 < len(grid)]
        if not candidates:
            raise CompressorError(f"layer-sensitive cannot reach amount {amount}: every layer is at the scan's "
                                  f"largest ratio {top}")
        _, name = min(candidates)
        take = min(float(grid[level[name] + 1] - grid[level[name]]), remaining / sizes[name])
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


def calib_batches(context: StrategyContext, samples: int) -> Batches:
    """At least `samples` calibration images (or all), shuffled with a fixed seed, in batches of 256.

    A last batch under 32 images joins the one before, so batch statistics never rest on a handful of images.
    """
    batches: Batches = []
    for x, y in context.calib.batches(context.input_size, 256, shuffle=True, seed=CALIB_SEED):
        batches.append((x, y))
        if sum(len(b[1]) for b in batches) >= samples:
            break
    if len(batches) > 1 and len(batches[-1][1]) < 32:
        (x0, y0), (x1, y1) = batches[-2], batches.pop()
        batches[-1] = (torch.cat([x0, x1]), torch.cat([y0, y1]))
    return batches


@register_strategy("layer-sensitive")
@dataclass
class LayerSensitive(Strategy):
    """Per-layer sparsity chosen by held-out calibration loss among global, LAMP and sensitivity-scan allocations."""

    amount: float = param(0.5, "fraction of eligible weights to zero overall, in [0, 1)")
    allocation: Literal["auto", "global", "lamp", "scan", "blend"] = param(
        "auto", "per-layer allocation: auto picks the lowest calibration loss after BN recalibration among the others")
    ratios: str = param("0.5,0.7,0.9,0.95,0.99", "comma-separated ratios each layer is scanned at")
    calib_samples: int = param(512, "calibration images the scan evaluates (from the calib split)")
    judge_samples: int = param(2000, "calibration images each candidate allocation is judged on")
    include_first_conv: bool = param(False, "also prune the first (stem) convolution")
    include_classifier: bool = param(False, "also prune the final linear classifier")
    # judged after recalibration, so it asks for it; the run's recovery decides (compressor.strategies.registry)
    recommends_bn_recalibration: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_fraction("layer-sensitive.amount", self.amount)
        if self.allocation not in ALLOCATIONS:
            raise CompressorError(f"layer-sensitive.allocation must be one of {', '.join(ALLOCATIONS)}; "
                                  f"got {self.allocation!r}")
        try:
            values = self.ratio_values
        except ValueError:
            raise CompressorError(f"layer-sensitive.ratios must be numbers separated by commas; "
                                  f"got {self.ratios!r}") from None
        for value in values:
            check_fraction("each of layer-sensitive.ratios", value)
        if not values or (self.allocation in ("scan", "blend") and values[-1] < self.amount):
            raise CompressorError(f"layer-sensitive.ratios must reach at least the amount {self.amount}; "
                                  f"got {self.ratios!r}")
        check_int("layer-sensitive.calib_samples", self.calib_samples)
        check_int("layer-sensitive.judge_samples", self.judge_samples)

    @property
    def ratio_values(self) -> tuple[float, ...]:
        """The scan ratios as sorted floats."""
        return tuple(sorted(float(r) for r in str(self.ratios).split(",")))

    def _scan(self, model: nn.Module, layers: dict[str, nn.Module], context: StrategyContext) -> dict[str, Any]:
        """The sensitivity scan, from the cache when one covers this model, data and settings."""
        ratios = self.ratio_values
        key = _scan_key(model, list(layers), ratios, self.calib_samples, context)
        cache = context.cache_dir / "sensitivity" / f"{key}.json" if context.cache_dir else None
        result, cached = _read_cache(cache, list(layers)), True
        if result is None:
            result, cached = scan(model, layers, ratios, context, calib_batches(context, self.calib_samples)), False
            if cache is not None:
                write_json_atomic(result, cache)
        return {**result, "cached": cached, "cache_file": str(cache) if cache else None}

    def candidates(self, layers: dict[str, nn.Module], scanned: dict[str, Any] | None) -> dict[str, Masks]:
        """The keep-masks of each allocation this run considers, by name."""
        wanted = ALLOCATIONS[1:] if self.allocation == "auto" else (self.allocation,)
        found: dict[str, Masks] = {}
        if "global" in wanted:
            found["global"] = magnitude_masks(layers, self.amount)
        if "lamp" in wanted or "blend" in wanted:
            found["lamp"] = lamp_masks(layers, self.amount)
        if scanned is not None:
            sizes = {name: layer.weight.numel() for name, layer in layers.items()}
            greedy = allocate(scanned["loss_increase"], scanned["ratios"], sizes, self.amount)
            found["scan"] = ratio_masks(layers, greedy)
            if "blend" in wanted:
                lamp = mask_ratios(found["lamp"])
                found["blend"] = ratio_masks(layers, {name: (lamp[name] + greedy[name]) / 2 for name in layers})
        return {name: masks for name, masks in found.items() if name in wanted}

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Build the candidate allocations, judge each after BN recalibration, prune by the best (the run
        recalibrates)."""
        layers = prunable_layers(model, include_first_conv=self.include_first_conv,
                                 include_classifier=self.include_classifier)
        model.eval()
        needs_scan = self.allocation in ("scan", "blend") or (
            self.allocation == "auto" and self.ratio_values[-1] >= self.amount)
        scanned = self._scan(model, layers, context) if needs_scan else None
        options = self.candidates(layers, scanned)
        batches = calib_batches(context, self.judge_samples)
        judged: dict[str, dict[str, Any]] = {}
        with context.progress("layer-sensitive: judging allocations", len(options)) as advance:
            for name, masks in options.items():
                judged[name] = judge(model, layers, masks, context, batches)
                advance()
        chosen = min(judged, key=lambda name: judged[name]["calib_loss"])
        masks = options[chosen]
        apply_masks(layers, masks)
        record: dict[str, Any] = sparsity_record(masks)
        for name, info in record["layers"].items():
            info["chosen_ratio"] = judged[chosen]["ratios"][name]
            if scanned is not None:
                info["scan_drops"] = scanned["drops"][name]
                info["scan_loss_increase"] = scanned["loss_increase"][name]
        record["allocation"] = {
            "requested": self.allocation, "chosen": chosen,
            "criterion": "calibration cross-entropy after BatchNorm recalibration on training images",
            "calib_samples": sum(len(y) for _, y in batches), "candidates": judged,
            "skipped": {} if scanned is not None or self.allocation != "auto" else {
                "scan": f"the scan's largest ratio {self.ratio_values[-1]} is below the amount {self.amount}",
                "blend": "needs the scan"}}
        if scanned is not None:
            record["sensitivity"] = scanned
        return StrategyOutput(model, record)
