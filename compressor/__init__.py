"""Compress PyTorch image classifiers with registered strategies and measure what each recipe costs and buys."""

from compressor.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint
from compressor.errors import CompressorError
from compressor.pipeline import RunConfig, RunResult, Step, parse_steps, run
from compressor.registry import (
    StrategyContext,
    StrategyOutput,
    build_strategy,
    get_strategy,
    list_strategies,
    param,
    register_strategy,
)

__all__ = [
    "Checkpoint", "CompressorError", "ModelSpec", "RunConfig", "RunResult", "Step", "StrategyContext",
    "StrategyOutput", "build_strategy", "get_strategy", "list_strategies", "load_checkpoint", "param",
    "parse_steps", "register_strategy", "run", "save_checkpoint",
]
__version__ = "0.1.0"
