"""Pipelines as data: `Step`s (a strategy name and its parameter overrides) parsed from `a+b` and `key=value`,
checked against a model and applied in order."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from compressor.errors import CompressorError
from compressor.strategies.registry import (
    StrategyContext,
    build_strategy,
    get_strategy,
    recommends_bn_recalibration,
    recovery_setting_error,
)


@dataclass(frozen=True)
class Step:
    """One strategy of a pipeline with its parameter overrides (raw strings or typed values)."""

    strategy: str
    params: dict[str, Any] = field(default_factory=dict)


def parse_steps(strategies: list[str], amount: float | str | None = None,
                params: list[str] | None = None) -> list[Step]:
    """Build pipeline steps from `a+b` names, a shared `amount` and `key=value` / `step.key=value` overrides."""
    names = [name.strip() for spec in strategies for name in spec.split("+")]
    if not names or any(not n for n in names):
        raise CompressorError(f"--strategy needs one or more names (a, a+b); got {'+'.join(strategies)!r}")
    infos = [get_strategy(n) for n in names]
    steps = [Step(n, {}) for n in names]
    if amount is not None:
        takers = [s for s, info in zip(steps, infos) if any(p.name == "amount" for p in info.params)]
        if not takers:
            raise CompressorError(f"--amount does not apply: none of {', '.join(names)} has an amount parameter")
        for step in takers:
            step.params["amount"] = amount
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CompressorError(f"--param expects key=value or strategy.key=value; got {item!r}")
        target, dot, pname = key.rpartition(".")
        if pname == "bn_recalibrate":
            raise recovery_setting_error(target or "+".join(names))
        chosen = [(s, i) for s, i in zip(steps, infos) if not dot or s.strategy == target]
        if dot and not chosen:
            raise CompressorError(f"--param {item!r} names strategy {target!r}, which is not in the pipeline "
                                  f"({'+'.join(names)})")
        if not dot:
            chosen = [(s, i) for s, i in chosen if any(p.name == pname for p in i.params)]
            if not chosen:
                known = ", ".join(f"{i.name}: {', '.join(p.name for p in i.params) or '(none)'}" for i in infos)
                raise CompressorError(f"--param {item!r}: no strategy in the pipeline has a parameter {pname!r} "
                                      f"({known})")
        for step, info in chosen:
            info.param(pname)
            step.params[pname] = value
    check_order(steps)
    return steps


def export_not_last(strategy: str, after: str) -> CompressorError:
    """The error for a strategy that acts at export followed by another step."""
    return CompressorError(f"{strategy} acts on the exported model and must be the last step; {after} comes after it")


def check_order(steps: list[Step]) -> None:
    """Fail if a strategy that acts at export (int8) is not the last step; each step is built, so bad parameters
    fail here too."""
    for index, step in enumerate(steps):
        if build_strategy(step.strategy, step.params).acts_on_export and index < len(steps) - 1:
            raise export_not_last(step.strategy, steps[index + 1].strategy)


def recalibration_recommended(steps: list[Step]) -> bool:
    """Whether any step recommends BatchNorm recalibration after it (registry.recommends_bn_recalibration)."""
    return any(recommends_bn_recalibration(build_strategy(step.strategy, step.params)) for step in steps)


def apply_steps(model: nn.Module, steps: Sequence[Step], context: StrategyContext,
                announce: Any = None) -> tuple[nn.Module, list[dict[str, Any]], dict[str, Any]]:
    """Apply each step in order: the model, one record per step, and the merged export-time plan."""
    records: list[dict[str, Any]] = []
    deploy: dict[str, Any] = {}
    for index, step in enumerate(steps):
        if deploy:
            raise export_not_last(steps[index - 1].strategy, step.strategy)
        strategy = build_strategy(step.strategy, step.params)
        if announce is not None:
            announce(step.strategy, dataclasses.asdict(strategy))
        start = time.perf_counter()
        output = strategy.apply(model, context)
        model = output.model
        deploy.update(output.deploy or {})
        records.append({"strategy": step.strategy, "params": dataclasses.asdict(strategy),
                        "seconds": round(time.perf_counter() - start, 3), "record": output.record})
    return model, records, deploy


def check_fit(steps: Sequence[Step], model: nn.Module) -> None:
    """Fail if a step cannot act on this model (strategies with a `check(model)` hook say so in one line)."""
    check_order(list(steps))
    for step in steps:
        build_strategy(step.strategy, step.params).check(model)
