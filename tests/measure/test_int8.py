"""int8 that pays: the quantized graph runs integer kernels, the calibration method is chosen by accuracy, and a
trained model keeps its accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from compressor.api import Int8Plan
from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.measure.accuracy import onnx_forward, predict, torch_forward
from compressor.measure.export import export_onnx, quantize_onnx_int8
from compressor.measure.int8_choice import choose_calibration
from compressor.measure.int8_kernels import int8_kernel_report
from compressor.measure.latency import onnxruntime_session
from compressor.report.uncertainty import discordant_counts, mcnemar_p_value
from tests.conftest import TinyNet

SIZE = 16


@pytest.fixture(scope="module")
def trained(digits: Dataset) -> TinyNet:
    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(6):
        for x, y in digits.train.batches(SIZE, 64, shuffle=True, seed=epoch):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


def _calibration(digits: Dataset, count: int = 64) -> callable:
    def draw(size: int) -> list[np.ndarray]:
        return [x.numpy() for _, (x, _) in zip(range(count), digits.train.batches(size, 1, shuffle=True, seed=0))]
    return draw


def test_quantized_graph_runs_integer_kernels_and_fp32_does_not(tmp_path: Path, tiny_net: TinyNet,
                                                                digits: Dataset) -> None:
    fp32 = export_onnx(tiny_net.eval(), tmp_path / "m.onnx", 1, SIZE)
    int8 = quantize_onnx_int8(fp32, tmp_path / "q.onnx", _calibration(digits, 16)(SIZE))
    quantized = int8_kernel_report(int8, (1, 1, SIZE, SIZE))
    assert quantized["runs_int8"], quantized["optimized_op_counts"]
    assert quantized["int8_compute_ops"].get("QLinearConv") == 3  # stem, conv1, conv2: every conv
    assert quantized["profile_int8_share"] > 0
    assert quantized["session_options"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
    plain = int8_kernel_report(fp32, (1, 1, SIZE, SIZE))
    assert not plain["runs_int8"] and not plain["int8_compute_ops"] and plain["float_compute_ops"]


def test_unknown_calibration_method_is_one_line_error(tmp_path: Path, tiny_net: TinyNet) -> None:
    fp32 = export_onnx(tiny_net.eval(), tmp_path / "m.onnx", 1, SIZE)
    with pytest.raises(CompressorError, match="calibration method must be one of minmax, entropy, percentile; "
                                              "got 'kl'"):
        quantize_onnx_int8(fp32, tmp_path / "q.onnx", [], method="kl")


def test_auto_calibration_keeps_the_most_accurate_method(trained: TinyNet, digits: Dataset) -> None:
    plan, record = choose_calibration(trained, 1, SIZE, Int8Plan(_calibration(digits)), digits.calib, samples=300)
    accuracy = record["judge_accuracy"]
    assert set(accuracy) == {"minmax", "entropy", "percentile"}
    assert record["judge_samples"] == min(300, len(digits.calib))
    assert plan.method == record["chosen"] and accuracy[plan.method] == max(accuracy.values())
    order = ["minmax", "entropy", "percentile"]
    assert record["chosen"] == min((m for m in order if accuracy[m] == max(accuracy.values())), key=order.index)


def test_int8_keeps_a_trained_models_test_accuracy(tmp_path: Path, trained: TinyNet, digits: Dataset) -> None:
    """int8 is not less accurate than fp32 beyond the test set's noise: McNemar's exact test on the same 360 images.

    α = 0.001: quantization noise may flip a few images either way on any CPU; a broken calibration flips many one
    way (12 images lost and none gained already give p < 0.001)."""
    fp32_logits, labels = predict(torch_forward(trained), digits.test, SIZE)
    assert (fp32_logits.argmax(1) == labels).mean() > 0.9  # a trained model, not chance
    fp32 = export_onnx(trained, tmp_path / "m.onnx", 1, SIZE)
    plan, _ = choose_calibration(trained, 1, SIZE, Int8Plan(_calibration(digits, 128)), digits.calib)
    int8 = quantize_onnx_int8(fp32, tmp_path / "q.onnx", plan.calibration(SIZE), method=plan.method)
    int8_logits, _ = predict(onnx_forward(onnxruntime_session(int8, 1)), digits.test, SIZE)
    only_fp32, only_int8 = discordant_counts(fp32_logits.argmax(1) == labels, int8_logits.argmax(1) == labels)
    assert only_fp32 <= only_int8 or mcnemar_p_value(only_fp32, only_int8) >= 0.001, (only_fp32, only_int8)


def test_an_int8_measurement_records_the_kernels_its_graph_runs(trained: TinyNet, digits: Dataset) -> None:
    """measure_model with an int8 plan says which kernels the deployed graph runs: every conv of this net is an
    integer kernel, and the profiled share of time in integer kernels is a fraction; without int8 nothing is said."""
    from compressor.measure.harness import MeasureConfig, measure_model

    config = MeasureConfig(backends=("torch",))
    plan = Int8Plan(_calibration(digits, 16))
    quantized = measure_model(trained, in_channels=1, input_size=SIZE, split=digits.test, config=config,
                              latency=False, int8=plan)
    kernels = quantized["int8_kernels"]
    assert kernels["runs_int8"] and kernels["int8_compute_ops"].get("QLinearConv") == 3
    assert 0 < kernels["profile_int8_share"] <= 1
    assert kernels["input_shape"] == [1, 1, SIZE, SIZE]
    plain = measure_model(trained, in_channels=1, input_size=SIZE, split=digits.test, config=config, latency=False)
    assert "int8_kernels" not in plain
