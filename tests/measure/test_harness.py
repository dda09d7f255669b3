"""The harness: every block present, sizes and latencies real, torch and ONNX Runtime measured the same way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.measure import MeasureConfig, TimingPlan, measure_model

QUICK = TimingPlan(warmup_runs=2, warmup_seconds=0.0, min_runs=10, min_seconds=0.0)


def test_measure_model_reports_every_block(tmp_path: Path, tiny_net: nn.Module, digits: Dataset) -> None:
    config = MeasureConfig(backends=("torch", "onnxruntime", "cuda"), batch_size=2, input_size=16, threads=1,
                           plan=QUICK, repeats=2)
    result = measure_model(tiny_net, in_channels=1, input_size=8, split=digits.test, config=config,
                           artifacts_dir=tmp_path)
    assert result["input_size"] == 8 and result["deploy_input_size"] == 16
    assert result["size_bytes"] == os.path.getsize(tmp_path / "model.pt")
    assert result["deployable_bytes"] <= result["size_bytes"]
    for backend in ("torch", "onnxruntime"):
        stats = result["latency"][backend]
        assert stats["batch_size"] == 2 and stats["input_size"] == 16 and stats["threads"] == 1
        medians = stats["repeat_medians_ms"]
        assert len(medians) == 2 and stats["repeat_spread"] == pytest.approx(abs(medians[0] - medians[1])
                                                                             / (sum(medians) / 2))
    assert "skipped" in result["latency"]["cuda"] or result["latency"]["cuda"]["runs"] >= 10
    accuracy = result["evaluation"]
    assert accuracy["split"] == "test" and accuracy["samples"] == len(digits.test)
    assert accuracy["onnxruntime"]["max_abs_logit_diff_vs_torch"] < 1e-4
    assert accuracy["onnxruntime"]["accuracy"] == pytest.approx(accuracy["torch"]["accuracy"], abs=1 / 360)
    assert accuracy["torch"]["accuracy"] == result["accuracy"] and accuracy["torch"]["f1_macro"] == result["f1_macro"]
    assert result["complexity"]["input_size"] == 16 and result["macs"] == result["complexity"]["macs"]


def test_without_data_accuracy_is_skipped_with_a_reason(tiny_net: nn.Module) -> None:
    result = measure_model(tiny_net, in_channels=1, input_size=8,
                           config=MeasureConfig(backends=("torch",), plan=QUICK))
    assert "no dataset" in result["evaluation"]["skipped"] and "accuracy" not in result


@pytest.mark.parametrize("kwargs, message", [
    ({"backends": ("tensorrt",)}, "unknown backend 'tensorrt'; choose from: torch, onnxruntime, cuda"),
    ({"batch_size": 0}, "--batch-size must be at least 1"),
    ({"repeats": 0}, "--repeats must be at least 1"),
    ({"threads": 0}, "--threads must be at least 1"),
    ({"processes": 0}, "--processes must be at least 1"),
])
def test_bad_measure_config_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(CompressorError, match=message):
        MeasureConfig(**kwargs)
