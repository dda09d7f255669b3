"""Compress PyTorch image classifiers with registered strategies and measure what each recipe costs and buys.

The public API: `compress(model, "channels", ...)` and `measure(model, loader, ...)` over any `nn.Module` and
any loader of (inputs, labels) batches; `run(RunConfig(...))` for the full pipeline the CLI drives; registries
for strategies and architectures; and the helpers a strategy plugin needs (selection, calibration scores).
"""

from compressor.api import Compressed, ModelMeasurement, compress, measure
from compressor.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint
from compressor.data import DatasetRequest, list_datasets, load_dataset, register_dataset
from compressor.errors import CompressorError, RuntimeFailure
from compressor.loaders import LoaderSplit, Split
from compressor.models import build_model, list_archs, register_arch
from compressor.pipeline import RunConfig, RunResult, run
from compressor.progress import ProgressCallback, RichProgress, silent_progress
from compressor.registry import (
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
from compressor.steps import Step, parse_steps
from compressor.strategies.selection import apply_masks, global_masks, layer_masks, prunable_layers, sparsity_record
from compressor.strategies.sensitivity import calib_scores

__all__ = [
    "Checkpoint", "Compressed", "CompressorError", "DatasetRequest", "list_datasets", "load_dataset",
    "register_dataset", "ModelMeasurement", "compress", "measure", "LoaderSplit", "ModelSpec", "ProgressCallback",
    "RichProgress", "RunConfig",
    "RunResult", "RuntimeFailure", "Split", "Step", "Strategy", "StrategyContext", "StrategyOutput", "apply_masks",
    "build_model", "build_strategy", "calib_scores", "check_fraction", "check_int", "get_strategy",
    "global_masks", "layer_masks", "list_archs", "list_strategies", "load_checkpoint", "param", "parse_steps",
    "prunable_layers", "register_arch", "register_strategy", "run", "save_checkpoint", "silent_progress",
    "sparsity_record",
]
__version__ = "0.1.0"
