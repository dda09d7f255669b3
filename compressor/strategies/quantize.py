"""int8: post-training static quantization of the exported model (ONNX Runtime, QDQ, calibrated on train data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import nn

from compressor.errors import CompressorError
from compressor.measure.export import CALIBRATION_METHODS
from compressor.strategies.registry import (
    Strategy,
    StrategyContext,
    StrategyOutput,
    check_int,
    param,
    register_strategy,
)


@register_strategy("int8")
@dataclass
class Int8Static(Strategy):
    """Static int8 quantization of the deployed ONNX model; accuracy, size and latency are measured on it."""

    acts_on_export: ClassVar[bool] = True  # so it must be the last step of a pipeline
    calib_samples: int = param(256, "training images used to calibrate activation ranges")
    per_channel: bool = param(True, "one weight scale per output channel instead of per tensor")
    calibration: Literal["auto", "minmax", "entropy", "percentile"] = param(
        "auto", "activation-range method; auto quantizes with each and keeps the most accurate on held-out images")
    judge_samples: int = param(500, "held-out (calibration split) images that judge the methods when auto")

    def __post_init__(self) -> None:
        check_int("int8.calib_samples", self.calib_samples)
        check_int("int8.judge_samples", self.judge_samples)
        if self.calibration not in ("auto", *CALIBRATION_METHODS):
            raise CompressorError(f"int8.calibration must be one of auto, {', '.join(CALIBRATION_METHODS)}; "
                                  f"got {self.calibration!r}")

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Leave the weights alone and ask for the exported ONNX model to be quantized."""
        plan = {"calib_samples": self.calib_samples, "per_channel": self.per_channel,
                "calibration": self.calibration, "judge_samples": self.judge_samples}
        return StrategyOutput(model, {"format": "onnx int8 QDQ (ONNX Runtime static quantization)", **plan},
                              deploy={"int8": plan})
