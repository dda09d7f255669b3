"""The exported ONNX model computes what the torch model computes, and is evaluated by the same code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compressor.data import Dataset
from compressor.measure.accuracy import evaluate, onnx_forward, torch_forward
from compressor.measure.export import export_onnx
from compressor.measure.latency import onnxruntime_session
from compressor.models.zoo import build_model


@pytest.mark.parametrize("arch", ["resnet18", "densenet169"])
def test_onnx_outputs_match_torch_within_1e_4(tmp_path: Path, arch: str) -> None:
    model = build_model(arch, 10, 1).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after training
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    export_onnx(model, tmp_path / "model.onnx", 1, 32)
    session = onnxruntime_session(tmp_path / "model.onnx", threads=2)
    for batch in (1, 5):
        x = torch.randn(batch, 1, 32, 32)
        with torch.no_grad():
            expected = model(x).numpy()
        actual = session.run(None, {"input": x.numpy()})[0]
        np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


def test_same_metrics_code_for_torch_and_onnxruntime(tmp_path: Path, tiny_net: nn.Module, digits: Dataset) -> None:
    tiny_net.eval()
    export_onnx(tiny_net, tmp_path / "model.onnx", 1, 8)
    ours = evaluate(torch_forward(tiny_net), digits.test, 8)
    theirs = evaluate(onnx_forward(onnxruntime_session(tmp_path / "model.onnx", threads=1)), digits.test, 8)
    assert ours == pytest.approx(theirs)
