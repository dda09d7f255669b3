"""Compress PyTorch image classifiers with registered strategies and measure what each recipe costs and buys.

The public API: `compress(model, "channels", ...)` and `measure(model, loader, ...)` over any `nn.Module` and
any loader of (inputs, labels) batches; `run(RunConfig(...))` for the full pipeline the CLI drives; registries
for strategies and architectures; and the helpers a strategy plugin needs (selection, calibration scores).

Names load on first use (PEP 562), so `import compressor` and the CLI's `--help` do not import torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

_HOMES = {
    "compressor.api": ("Compressed", "ModelMeasurement", "compress", "measure"),
    "compressor.models.checkpoint": ("Checkpoint", "ModelSpec", "load_checkpoint", "save_checkpoint"),
    "compressor.data": ("DatasetRequest", "list_datasets", "load_dataset", "register_dataset"),
    "compressor.errors": ("CompressorError", "RuntimeFailure"),
    "compressor.data.loaders": ("LoaderSplit", "Split"),
    "compressor.models.zoo": ("build_model", "list_archs", "register_arch"),
    "compressor.pipeline": ("RunConfig", "RunResult", "run"),
    "compressor.recovery.config": ("RecoveryConfig",),
    "compressor._util.progress": ("ProgressCallback", "RichProgress", "silent_progress"),
    "compressor.strategies.registry": ("Strategy", "StrategyContext", "StrategyOutput", "build_strategy",
                                       "check_fraction", "check_int", "get_strategy", "list_strategies", "param",
                                       "register_strategy"),
    "compressor.strategies.steps": ("Step", "parse_steps"),
    "compressor.strategies.selection": ("apply_masks", "global_masks", "layer_masks", "prunable_layers",
                                        "sparsity_record"),
    "compressor.strategies.sensitivity": ("calib_scores",),
}
_SOURCE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_SOURCE)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` the first time someone asks for it."""
    module = _SOURCE.get(name)
    if module is None:
        raise AttributeError(f"module 'compressor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """`compressor.measure` is the API function, although a subpackage has the same name: importing the subpackage
    (which Python records as an attribute of its parent) must not replace the function."""

    @property
    def measure(self) -> Any:
        from compressor.api import measure
        return measure

    @measure.setter
    def measure(self, value: Any) -> None:
        if not isinstance(value, types.ModuleType):
            raise AttributeError("compressor.measure is the API function and cannot be reassigned")


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # what type checkers and IDEs see
    from compressor._util.progress import ProgressCallback, RichProgress, silent_progress  # noqa: F401
    from compressor.api import Compressed, ModelMeasurement, compress, measure  # noqa: F401
    from compressor.data import DatasetRequest, list_datasets, load_dataset, register_dataset  # noqa: F401
    from compressor.data.loaders import LoaderSplit, Split  # noqa: F401
    from compressor.errors import CompressorError, RuntimeFailure  # noqa: F401
    from compressor.models.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint  # noqa: F401
    from compressor.models.zoo import build_model, list_archs, register_arch  # noqa: F401
    from compressor.pipeline import RunConfig, RunResult, run  # noqa: F401
    from compressor.recovery.config import RecoveryConfig  # noqa: F401
    from compressor.strategies.registry import (  # noqa: F401
        Strategy,
        StrategyContext,
        StrategyOutput,
        build_strategy,
        check_fraction,
        check_int,
        get_strategy,
        list_strategies,
        param,
        register_strategy,
    )
    from compressor.strategies.selection import apply_masks, global_masks, layer_masks, prunable_layers, sparsity_record  # noqa: F401
    from compressor.strategies.sensitivity import calib_scores  # noqa: F401
    from compressor.strategies.steps import Step, parse_steps  # noqa: F401
