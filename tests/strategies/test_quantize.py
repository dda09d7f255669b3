"""int8: the quantized ONNX file is smaller than fp32 and computes nearly the same function."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.measure.export import export_onnx, quantize_onnx_int8
from compressor.measure.latency import onnxruntime_session
from compressor.models.zoo import build_model
from compressor.strategies.registry import build_strategy


def test_int8_file_is_smaller_and_outputs_stay_close(tmp_path: Path, digits: Dataset) -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", 10, 1).eval()
    export_onnx(model, tmp_path / "model.onnx", 1, 32)
    calibration = [x.numpy() for _, (x, _) in zip(range(16), digits.train.batches(32, 1))]
    quantize_onnx_int8(tmp_path / "model.onnx", tmp_path / "model.int8.onnx", calibration)
    assert os.path.getsize(tmp_path / "model.int8.onnx") < 0.3 * os.path.getsize(tmp_path / "model.onnx")
    x, _ = next(digits.test.batches(32, 16))
    with torch.no_grad():
        expected = model(x).numpy()
    actual = onnxruntime_session(tmp_path / "model.int8.onnx", 1).run(None, {"input": x.numpy()})[0]
    assert np.corrcoef(actual.flatten(), expected.flatten())[0, 1] > 0.95


def test_int8_strategy_leaves_weights_alone_and_asks_for_export_quantization(tiny_net: nn.Module) -> None:
    before = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    output = build_strategy("int8", {"calib_samples": "64"}).apply(tiny_net, None)
    assert output.deploy == {"int8": {"calib_samples": 64, "per_channel": True, "calibration": "auto",
                                      "judge_samples": 500}}
    assert all(torch.equal(before[k], v) for k, v in tiny_net.state_dict().items())


def test_bad_calibration_count_is_refused() -> None:
    with pytest.raises(CompressorError, match="int8.calib_samples must be an integer of at least 1"):
        build_strategy("int8", {"calib_samples": "0"})


def test_bad_calibration_method_is_refused() -> None:
    with pytest.raises(CompressorError, match="int8.calibration must be one of auto, minmax, entropy, percentile; "
                                              "got 'kl'"):
        build_strategy("int8", {"calibration": "kl"})
