"""compressor.testing.check_strategy: every built-in and the example plugin keep the strategy contract, and each
rule of the contract catches the strategy that breaks it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from compressor import Strategy, StrategyContext, StrategyOutput, param
from compressor.errors import CompressorError
from compressor.strategies.registry import list_strategies
from compressor.testing import check_strategy

ROOT = Path(__file__).resolve().parents[1]
SECOND_ORDER = {"gradients": 4, "grad_batch": 8, "recomputations": 2, "calib_samples": 32}
FAST = {  # the same code paths on a few batches
    "layer-sensitive": {"calib_samples": 32, "judge_samples": 32, "ratios": "0.5,0.9"},
    "obd": SECOND_ORDER,
    "woodfisher": {**SECOND_ORDER, "block_size": 8},
    "fishleg": {**SECOND_ORDER, "gradients": 8, "aux_steps": 4, "refine_steps": 2, "probe_bank": 4, "heldout_probes": 2,
                "fisher_batch": 8},
    "blocks": {"amount": 0.25},
    "int8": {"calib_samples": 8, "judge_samples": 8, "calibration": "minmax"},
}
BUILT_INS = [info for info in list_strategies() if info.source.startswith("compressor.")]


def _resnet18() -> nn.Module:
    return torchvision.models.resnet18(num_classes=4)


@pytest.mark.parametrize("info", BUILT_INS, ids=lambda info: info.name)
def test_every_built_in_strategy_keeps_the_contract(info) -> None:
    output = check_strategy(info.cls, params=FAST.get(info.name))
    if output is None:  # refused the small CNN in one line: it must then work on the model it is made for
        assert info.name == "blocks", f"{info.name} refused a plain CNN"
        assert check_strategy(info.cls, params={"amount": 0.25}, model=_resnet18, input_size=32) is not None


def test_the_example_plugin_keeps_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "compressor-plugin-random"))
    sys.modules.pop("compressor_random", None)
    from compressor_random import RandomUnstructured

    output = check_strategy(RandomUnstructured, params={"amount": 0.5})
    assert output is not None and output.record["sparsity"] == pytest.approx(0.5, abs=0.01)


@dataclass
class _Keeps(Strategy):
    """Leaves the model as it is."""

    amount: float = param(0.5, "unused")

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        return StrategyOutput(model, {"kept": True})


@dataclass
class _NoHelp(_Keeps):
    """A parameter without help."""

    amount: float = 0.5


@dataclass
class _GlobalRandom(_Keeps):
    """Noise from the global RNG instead of context.seed."""

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        with torch.no_grad():
            model[0].weight.add_(torch.randn_like(model[0].weight))
        return StrategyOutput(model, {})


@dataclass
class _TouchyCheck(_Keeps):
    """Its check changes the model."""

    def check(self, model: nn.Module) -> None:
        with torch.no_grad():
            model[0].weight.zero_()


@dataclass
class _LoudRefusal(_Keeps):
    """Refuses in two lines."""

    def check(self, model: nn.Module) -> None:
        raise CompressorError("no\nthanks")


@dataclass
class _Unplanned(_Keeps):
    """Says it acts on export but gives no plan."""

    acts_on_export = True


@dataclass
class _BadRecord(_Keeps):
    """Records a tensor."""

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        return StrategyOutput(model, {"weights": torch.zeros(1)})


@dataclass
class _NotAStrategy:
    """Has apply but no base class."""

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        return StrategyOutput(model, {})


def test_a_strategy_that_keeps_every_rule_passes() -> None:
    assert check_strategy(_Keeps).record == {"kept": True}


@pytest.mark.parametrize("cls, rule", [
    (_NoHelp, "amount needs a help text"),
    (_GlobalRandom, "the same seed must give the same weights"),
    (_TouchyCheck, "check(model) must not modify the model"),
    (_LoudRefusal, "must refuse in one line"),
    (_Unplanned, "exactly when acts_on_export"),
    (_BadRecord, "record must be JSON-able"),
    (_NotAStrategy, "must subclass compressor.Strategy"),
])
def test_each_rule_catches_the_strategy_that_breaks_it(cls: type, rule: str) -> None:
    with pytest.raises(AssertionError, match=rule.replace("(", r"\(").replace(")", r"\)")):
        check_strategy(cls)
