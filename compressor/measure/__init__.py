"""Measurements: pure functions of a model (or a file) that never know which strategy produced it."""

from compressor.measure.harness import MeasureConfig, measure_model
from compressor.measure.latency import TimingPlan

__all__ = ["MeasureConfig", "TimingPlan", "measure_model"]
