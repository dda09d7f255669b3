"""Choose the int8 calibration method by accuracy: quantize with each, keep the one held-out images like best."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from compressor.data import Split
from compressor.measure.accuracy import onnx_forward
from compressor.measure.export import CALIBRATION_METHODS, export_onnx, quantize_onnx_int8
from compressor.measure.harness import Int8Plan
from compressor.measure.latency import onnxruntime_session


def _judge_set(split: Split, input_size: int, samples: int) -> tuple[list[Any], np.ndarray]:
    """The first `samples` images of `split` (in order) as batches, and their labels."""
    images, labels, seen = [], [], 0
    for x, y in split.batches(input_size, 250):
        if seen >= samples:
            break
        take = min(len(y), samples - seen)
        images.append(x[:take])
        labels.append(y[:take].numpy())
        seen += take
    return images, np.concatenate(labels)


def _onnx_accuracy(path: Path, images: list[Any], labels: np.ndarray) -> float:
    forward = onnx_forward(onnxruntime_session(path, 1))
    predictions = np.concatenate([forward(x).numpy().argmax(1) for x in images])
    return float((predictions == labels).mean())


def choose_calibration(model: nn.Module, in_channels: int, input_size: int, plan: Int8Plan, judge: Split,
                       samples: int = 500) -> tuple[Int8Plan, dict[str, Any]]:
    """`plan` with the calibration method whose int8 model is most accurate on `samples` images of `judge`.

    Ties go to the earlier of minmax, entropy, percentile (cheapest first). The record holds every method's
    accuracy and the fp32 export's on the same images.
    """
    images, labels = _judge_set(judge, input_size, samples)
    calibration = plan.calibration(input_size)
    accuracy: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="compressor-int8-choice-") as scratch:
        onnx_path = export_onnx(model.eval(), Path(scratch) / "fp32.onnx", in_channels, input_size)
        fp32 = _onnx_accuracy(onnx_path, images, labels)
        for method in CALIBRATION_METHODS:
            quantized = quantize_onnx_int8(onnx_path, Path(scratch) / f"{method}.onnx", calibration,
                                           per_channel=plan.per_channel, method=method)
            accuracy[method] = _onnx_accuracy(quantized, images, labels)
    chosen = max(CALIBRATION_METHODS, key=lambda m: (accuracy[m], -CALIBRATION_METHODS.index(m)))
    record = {"chosen": chosen, "judge_samples": int(len(labels)), "judge_accuracy": accuracy,
              "fp32_judge_accuracy": fp32, "calibration_images": len(calibration)}
    return dataclasses.replace(plan, method=chosen), record
