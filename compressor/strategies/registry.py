"""Strategy registry: `@register_strategy("name")` on a dataclass, plus `compressor.strategies` entry points.

A strategy is a dataclass subclassing `Strategy` whose fields are its parameters (typed, with defaults and a `help`
in the field metadata) and whose `apply(model, context)` returns a `StrategyOutput`. It never measures, prints
(progress bars aside) or writes files.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import torch
from torch import nn

from compressor._util.progress import ProgressCallback, silent_progress
from compressor._util.registry import EntryPointRules, Registry
from compressor.data import Dataset
from compressor.data.loaders import Split
from compressor.errors import CompressorError

ENTRY_POINT_GROUP = "compressor.strategies"


@dataclass
class StrategyContext:
    """What a strategy may use besides the model: training and calibration batches (one Split interface whatever
    their origin), input size, seed, device, a cache directory it may write to, and a progress callback."""

    train: Split
    calib: Split
    input_size: int
    data_key: str = "data"  # names the data in cache keys: a dataset's name, or a loader's fingerprint
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    cache_dir: Path | None = None
    progress: ProgressCallback = silent_progress

    @classmethod
    def for_dataset(cls, dataset: Dataset, input_size: int, **kwargs: Any) -> StrategyContext:
        """A context over a built-in dataset's train and calib splits."""
        return cls(train=dataset.train, calib=dataset.calib, input_size=input_size, data_key=dataset.info.name,
                   **kwargs)


@dataclass
class StrategyOutput:
    """The modified model, a JSON-able record of what the strategy did, and any export-time transform it asks for.

    `deploy` is for strategies that act when the model is exported rather than on its weights (int8 quantization):
    e.g. {"int8": {"calib_samples": 256, "per_channel": True}}.
    """

    model: nn.Module
    record: dict[str, Any]
    deploy: dict[str, Any] | None = None


class Strategy:
    """Base class of every strategy: a dataclass whose fields are its parameters (declared with `param`), an
    `apply(model, context)` that returns a `StrategyOutput`, and hooks whose defaults suit a weight-masking strategy
    that fits any model. Override what differs:

    - `check(model)`: raise CompressorError when the strategy cannot act on this architecture (e.g. no removable
      blocks). Called before anything heavy, with an untrained model of the same architecture; it must not modify
      the model.
    - `acts_on_export` (class attribute): the strategy acts when the model is exported (int8 quantization), returns
      its plan in `StrategyOutput.deploy`, and must be the last step of a pipeline.
    - `removes_structure` (class attribute): the strategy deletes channels or blocks, so its `amount` is a fraction
      of what the model has now (gradual pruning converts its schedule accordingly); a masking strategy's `amount`
      is the total fraction of zeros, which counts the zeros already there.
    - `recommends_bn_recalibration` (class attribute): the strategy leaves BatchNorm statistics stale (removing
      structure implies it). A recommendation only: the run's recovery settings decide, the same way for every
      strategy of a run or sweep.

    `compressor.testing.check_strategy(cls)` checks a strategy against this contract.
    """

    acts_on_export: ClassVar[bool] = False
    removes_structure: ClassVar[bool] = False
    recommends_bn_recalibration: ClassVar[bool] = False

    def check(self, model: nn.Module) -> None:
        """Raise CompressorError when this strategy cannot act on `model`; the default fits every model."""

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Compress `model` (in place or a new module) and say what was done."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply(model, context)")


def recommends_bn_recalibration(strategy: Strategy) -> bool:
    """Whether the strategy asks for BatchNorm recalibration after it (its flag, or removing structure)."""
    return strategy.recommends_bn_recalibration or strategy.removes_structure


def recovery_setting_error(strategy: str) -> CompressorError:
    """The error for `bn_recalibrate` given as a strategy parameter (it was one until recovery owned it)."""
    return CompressorError(f"{strategy}.bn_recalibrate: BatchNorm recalibration is a recovery setting, the same for "
                           "every strategy of a run; use --bn-recalibrate / --no-bn-recalibrate "
                           "(RecoveryConfig.bn_recalibrate)")


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a strategy, read from its dataclass field."""

    name: str
    type: Any
    default: Any
    help: str

    @property
    def type_name(self) -> str:
        """A short human name of the parameter type, e.g. `float` or `global|layer`."""
        if typing.get_origin(self.type) is Literal:
            return "|".join(str(a) for a in typing.get_args(self.type))
        return getattr(self.type, "__name__", str(self.type))


@dataclass(frozen=True)
class StrategyInfo:
    """A registered strategy: name, class, one-line description, parameters and where it came from."""

    name: str
    cls: type
    description: str
    params: tuple[ParamInfo, ...]
    source: str

    def param(self, name: str) -> ParamInfo:
        """The parameter called `name`, or a CompressorError listing the accepted ones."""
        for info in self.params:
            if info.name == name:
                return info
        accepted = ", ".join(p.name for p in self.params) or "(none)"
        raise CompressorError(f"strategy {self.name!r} has no parameter {name!r}; its parameters are: {accepted}")


T = TypeVar("T", bound=type)


def param(default: Any, help: str) -> Any:  # noqa: A002 - `help` reads naturally at the call site
    """Declare a strategy parameter with a default and one-line help."""
    return field(default=default, metadata={"help": help})


def _info(name: str, cls: type, source: str) -> StrategyInfo:
    if not (isinstance(cls, type) and issubclass(cls, Strategy) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"strategy {name!r} must be a dataclass subclassing compressor.Strategy (fields are its "
                        "parameters; it implements apply(model, context))")
    hints = typing.get_type_hints(cls)
    params = tuple(
        ParamInfo(f.name, hints.get(f.name, Any), f.default if f.default is not dataclasses.MISSING else None,
                  f.metadata.get("help", ""))
        for f in dataclasses.fields(cls) if f.init)
    description = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    return StrategyInfo(name, cls, description, params, source)


def _builtins() -> None:
    import compressor.strategies  # noqa: F401 - importing the package registers the built-ins


STRATEGIES: Registry[StrategyInfo] = Registry(
    "strategy", ENTRY_POINT_GROUP,
    EntryPointRules(entry=lambda point, cls: _info(point.name, cls, point.module),
                    own=lambda point, known: known.source == point.module),
    source=lambda info: info.source, identity=lambda info: info.cls, builtins=_builtins)


def register_strategy(name: str) -> Callable[[T], T]:
    """Class decorator registering a strategy dataclass under `name`."""

    def decorator(cls: T) -> T:
        STRATEGIES.add(name, _info(name, cls, getattr(cls, "__module__", "?")))
        return cls

    return decorator


def list_strategies(pattern: str = "*") -> list[StrategyInfo]:
    """Registered strategies whose name matches the shell-style `pattern`, sorted by name."""
    return sorted(STRATEGIES.entries(pattern), key=lambda info: info.name)


def plugin_errors() -> dict[str, str]:
    """Entry points that failed to load, by name, with the reason."""
    return STRATEGIES.plugin_errors()


def get_strategy(name: str) -> StrategyInfo:
    """The strategy registered as `name`, or a CompressorError listing the known ones."""
    info = STRATEGIES.find(name)
    if info is None:
        raise CompressorError(f"unknown strategy {name!r}{STRATEGIES.failure_hint(name)}; choose one of: "
                              f"{', '.join(STRATEGIES.names())}")
    return info


def parse_value(info: ParamInfo, strategy: str, raw: Any) -> Any:
    """Convert a raw (usually string) value to the parameter's type, with one clear error if it does not fit."""
    kind = info.type
    where = f"{strategy}.{info.name}"
    if not isinstance(raw, str):
        return raw
    if typing.get_origin(kind) is Literal:
        choices = [str(a) for a in typing.get_args(kind)]
        if raw not in choices:
            raise CompressorError(f"{where} must be one of {', '.join(choices)}; got {raw!r}")
        return typing.get_args(kind)[choices.index(raw)]
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise CompressorError(f"{where} must be true or false; got {raw!r}")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise CompressorError(f"{where} must be {'an integer' if kind is int else 'a number'}; "
                                  f"got {raw!r}") from None
    return raw


def build_strategy(name: str, params: dict[str, Any] | None = None) -> Strategy:
    """Instantiate strategy `name` with `params` (strings are converted to each parameter's type)."""
    info = get_strategy(name)
    if "bn_recalibrate" in (params or {}) and not any(p.name == "bn_recalibrate" for p in info.params):
        raise recovery_setting_error(name)
    values = {key: parse_value(info.param(key), name, raw) for key, raw in (params or {}).items()}
    return info.cls(**values)


def check_fraction(name: str, value: float) -> None:
    """Raise a CompressorError unless `value` is a finite number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= value < 1.0:
        raise CompressorError(f"{name} must be a number in [0, 1); got {value!r}")


def check_int(name: str, value: object, minimum: int = 1) -> None:
    """Raise a CompressorError unless `value` is an integer (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        bound = "a non-negative integer" if minimum == 0 else f"an integer of at least {minimum}"
        raise CompressorError(f"{name} must be {bound}; got {value!r}")
