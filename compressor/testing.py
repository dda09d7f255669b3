"""The strategy contract as a test: `check_strategy(cls)` for the built-ins, the example plugin and yours.

Call it from your own test suite (`def test_contract(): check_strategy(MyStrategy)`); it raises AssertionError
naming the rule a strategy breaks. It runs the strategy on a small CNN (or the model you give) over random data,
on the CPU, in a few seconds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from compressor.data.loaders import LoaderSplit
from compressor.errors import CompressorError
from compressor.strategies.registry import Strategy, StrategyContext, StrategyOutput


def small_cnn(num_classes: int = 4, in_channels: int = 3) -> nn.Module:
    """Two conv-BatchNorm-ReLU layers and a linear head: the default model a strategy is checked on."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))


def random_context(input_size: int = 16, in_channels: int = 3, num_classes: int = 4, samples: int = 64,
                   seed: int = 0) -> StrategyContext:
    """A context over seeded random images and labels (train and calib), on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(samples, in_channels, input_size, input_size, generator=generator)
    labels = torch.randint(0, num_classes, (samples,), generator=generator)
    split = LoaderSplit(DataLoader(TensorDataset(images, labels), batch_size=16))
    return StrategyContext(train=split, calib=split, input_size=input_size, data_key="random", seed=seed)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)


def check_strategy(cls: type, *, params: Mapping[str, Any] | None = None,
                   model: Callable[[], nn.Module] | None = None, input_size: int = 16, num_classes: int = 4,
                   in_channels: int = 3) -> StrategyOutput | None:
    """Assert that strategy class `cls` keeps the contract; returns its output, or None when its `check` refused
    the model (with one CompressorError line, as the contract asks).

    The rules: a dataclass subclassing `Strategy` with a one-line description; every parameter has a default and a
    help text; `check(model)` leaves the model untouched; `apply` returns a `StrategyOutput` whose model still
    maps inputs to class scores, whose record is JSON, whose export plan is present exactly when `acts_on_export`;
    and the same seed gives the same weights twice.
    """
    name = getattr(cls, "__name__", repr(cls))
    assert isinstance(cls, type) and issubclass(cls, Strategy), f"{name} must subclass compressor.Strategy"
    assert dataclasses.is_dataclass(cls), f"{name} must be a dataclass (its fields are its parameters)"
    assert (cls.__doc__ or "").strip(), f"{name} needs a docstring: its first line is the description in `list`"
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        assert has_default, f"{name}.{field.name} needs a default (declare it with param(default, help))"
        assert field.metadata.get("help"), f"{name}.{field.name} needs a help text (param(default, help))"
    strategy = cls(**dict(params or {}))
    build = model or (lambda: small_cnn(num_classes, in_channels))

    probe = build()
    before = _state(probe)
    try:
        strategy.check(probe)
    except CompressorError as exc:
        assert "\n" not in str(exc), f"{name}.check must refuse in one line; got {str(exc)!r}"
        return None
    assert _same(before, _state(probe)), f"{name}.check(model) must not modify the model"

    outputs = []
    for attempt in range(2):
        torch.manual_seed(0)
        subject = build().eval()
        torch.manual_seed(1 + attempt)  # randomness must come from context.seed, which both attempts share
        output = strategy.apply(subject, random_context(input_size, in_channels, num_classes))
        assert isinstance(output, StrategyOutput), f"{name}.apply must return a StrategyOutput"
        assert isinstance(output.model, nn.Module), f"{name}.apply must return the model in StrategyOutput.model"
        try:
            json.dumps(output.record)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"{name}.apply's record must be JSON-able: {exc}") from None
        assert bool(output.deploy) == strategy.acts_on_export, \
            f"{name}: an export plan (StrategyOutput.deploy) exactly when acts_on_export is True"
        with torch.no_grad():
            scores = output.model.eval()(torch.randn(2, in_channels, input_size, input_size))
        assert tuple(scores.shape) == (2, num_classes), f"{name}: the compressed model must still give class scores"
        outputs.append(output)
    assert _same(_state(outputs[0].model), _state(outputs[1].model)), \
        f"{name}: the same seed must give the same weights (use context.seed, not the global RNG)"
    return outputs[0]
