"""Gradual pruning: the pipeline's targets reached in rounds on Zhu & Gupta's cubic schedule, recovering between."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from compressor.models.training import zero_masks
from compressor.recovery.config import RecoveryConfig
from compressor.recovery.recover import recover
from compressor.strategies.registry import StrategyContext, build_strategy
from compressor.strategies.steps import Step, apply_steps


def cubic_fraction(step: int, steps: int) -> float:
    """Zhu & Gupta's cubic schedule: the share of the final amount reached after `step` of `steps` steps."""
    return 1 - (1 - step / steps) ** 3


def scheduled_steps(steps: Sequence[Step], step: int, total: int) -> list[Step]:
    """The pipeline's steps for pruning round `step` of `total`: amounts on the cubic schedule (masking strategies
    get the cumulative amount, structural ones the share of what is left); steps without an amount run in the last
    round only."""
    chosen = []
    for item in steps:
        strategy = build_strategy(item.strategy, item.params)
        target = getattr(strategy, "amount", None)
        if not isinstance(target, float | int) or target == 0:
            if step == total:
                chosen.append(item)
            continue
        now, before = target * cubic_fraction(step, total), target * cubic_fraction(step - 1, total)
        amount = 1 - (1 - now) / (1 - before) if strategy.removes_structure else now
        chosen.append(Step(item.strategy, {**item.params, "amount": amount}))
    return chosen


def _hold_zeros(model: nn.Module, zeros: dict[str, torch.Tensor]) -> None:
    """Zero again every weight that was zero before a round (where the tensor kept its shape)."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, keep in zeros.items():
            if name in params and params[name].shape == keep.shape:
                params[name].masked_fill_(~keep.to(params[name].device), 0.0)


def prune_gradually(model: nn.Module, steps: Sequence[Step], context: StrategyContext,
                    recovery: RecoveryConfig, *, teacher: nn.Module | None = None, show_progress: bool = False,
                    announce: Any = None) -> tuple[nn.Module, list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Reach the pipeline's targets in `recovery.prune_steps` pruning rounds, recovering after each (the
    fine-tuning budget split evenly); pruned weights stay exactly zero throughout. Returns the model, one record per
    applied step (with its round), the export plan and the recovery record."""
    rounds = recovery.prune_steps
    share = dataclasses.replace(recovery, finetune_epochs=recovery.finetune_epochs / rounds)
    records: list[dict[str, Any]] = []
    per_round: list[dict[str, Any]] = []
    deploy: dict[str, Any] = {}
    for index in range(1, rounds + 1):
        zeros = zero_masks(model)
        model, applied, deploy = apply_steps(model, scheduled_steps(steps, index, rounds), context, announce)
        _hold_zeros(model, zeros)
        records += [{**entry, "round": index} for entry in applied]
        per_round.append({"round": index, **recover(model, context.train, context.input_size, share,
                                                    show_progress=show_progress, teacher=teacher)})
    record = {"bn_recalibrate": bool(recovery.bn_recalibrate), "finetune_epochs": recovery.finetune_epochs,
              "distill": recovery.distill, "recipe": recovery.recovery_recipe, "prune_rounds": rounds,
              "schedule": "cubic (Zhu & Gupta)", "rounds": per_round}
    return model, records, deploy, record
