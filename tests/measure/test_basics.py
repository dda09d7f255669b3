"""Measurements: each number is what it claims to be."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from torch import nn

from compressor.measure.accuracy import classification_metrics
from compressor.measure.complexity import dense_macs, parameter_counts, weight_sparsity
from compressor.measure.latency import TimingPlan, sample_latencies, summarize, torch_cpu_latency
from compressor.measure.size import artifact_sizes, write_artifacts


def test_metrics_match_hand_computed_values() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 8, 200)
    logits = rng.normal(size=(200, 8))
    metrics = classification_metrics(logits, labels)
    assert metrics["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == labels))
    assert metrics["f1_macro"] == pytest.approx(f1_score(labels, logits.argmax(1), average="macro"))
    rank = np.array([(logits[i] > logits[i, labels[i]]).sum() for i in range(200)])
    assert metrics["top5"] == pytest.approx(np.mean(rank < 5))


def test_top5_only_with_more_than_five_classes() -> None:
    metrics = classification_metrics(np.eye(3)[[0, 1, 2]], np.array([0, 1, 1]))
    assert "top5" not in metrics and metrics["accuracy"] == pytest.approx(2 / 3)


def test_fp32_size_is_the_size_of_a_real_torch_save_file(tmp_path: Path, tiny_net: nn.Module) -> None:
    (tmp_path / "ref").mkdir()
    torch.save(tiny_net.state_dict(), tmp_path / "ref" / "model.pt")
    files = write_artifacts(tiny_net, tmp_path / "out", in_channels=1, input_size=16, onnx=False)
    sizes = artifact_sizes(files)
    fp32 = next(r for r in sizes["variants"] if r["variant"] == "fp32")
    assert fp32["bytes"] == os.path.getsize(tmp_path / "ref" / "model.pt")


def test_sparsity_and_counts(tiny_net: nn.Module) -> None:
    with torch.no_grad():
        tiny_net.conv1.weight.zero_()
        for p in tiny_net.parameters():
            if p is not tiny_net.conv1.weight:
                p.add_(1.0)
    counts = parameter_counts(tiny_net)
    assert counts["params_total"] == sum(p.numel() for p in tiny_net.parameters())
    assert counts["params_total"] - counts["params_nonzero"] == tiny_net.conv1.weight.numel()
    weights = sum(m.weight.numel() for m in tiny_net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert weight_sparsity(tiny_net)["sparsity"] == pytest.approx(tiny_net.conv1.weight.numel() / weights)


def test_macs_of_a_single_conv_equal_the_formula() -> None:
    conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False))
    assert dense_macs(conv, 3, 16) == 3 * 8 * 9 * 16 * 16


def test_latency_stats_are_computed_from_the_samples() -> None:
    samples = [float(x) for x in range(1, 101)]
    stats = summarize(samples)
    assert stats["median_ms"] == pytest.approx(np.percentile(samples, 50))
    assert stats["p90_ms"] == pytest.approx(np.percentile(samples, 90))
    assert stats["p99_ms"] == pytest.approx(np.percentile(samples, 99))
    assert stats["iqr_ms"] == pytest.approx(np.percentile(samples, 75) - np.percentile(samples, 25))
    assert stats["min_ms"] == 1.0 and stats["runs"] == 100


def test_sampling_meets_both_the_minimum_count_and_duration() -> None:
    calls = []
    samples = sample_latencies(lambda: calls.append(1), TimingPlan(warmup_runs=3, warmup_seconds=0.0,
                                                                   min_runs=25, min_seconds=0.0))
    assert len(samples) == 25 and len(calls) == 28
    slow = sample_latencies(lambda: torch.ones(1), TimingPlan(warmup_runs=0, warmup_seconds=0.0, min_runs=1,
                                                               min_seconds=0.05))
    assert len(slow) > 1


def test_torch_latency_records_backend_threads_and_runs(tiny_net: nn.Module) -> None:
    stats = torch_cpu_latency(tiny_net, 1, 16, threads=1, plan=TimingPlan(2, 0.0, 20, 0.0))
    assert stats["backend"] == "torch" and stats["threads"] == 1 and stats["runs"] == 20
    assert 0 < stats["min_ms"] <= stats["median_ms"] <= stats["p99_ms"]
    # the load check of the timing window: whether other processes were busy is recorded, never assumed
    assert stats["load"]["under_load"] in (True, False, None) and "checked" in stats["load"]
