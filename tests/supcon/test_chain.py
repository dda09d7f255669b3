"""The whole SupCon chain through the command lines on digits: pretrain -> linear -> evaluate -> tsne -> compress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from compressor.checkpoint import load_checkpoint


def _run(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=900)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("supcon")
    cache = ["--cache-dir", str(work / "cache")]
    steps = [
        ("supcon", ["pretrain", "--arch", "resnet18", "--epochs", "1", "--batch-size", "128", "-o", "pre.pt",
                    "-q", *cache]),
        ("supcon", ["linear", "pre.pt", "-o", "classifier.pt", "--epochs", "10", "-q", *cache]),
        ("supcon", ["evaluate", "classifier.pt", "--out", "eval", *cache]),
        ("supcon", ["tsne", "pre.pt", "-o", "tsne.png", "--samples", "150", "-q",
                    "--classifier", "linear=classifier.pt", *cache]),
        ("compressor", ["run", "--model", "classifier.pt", "--strategy", "l1", "--amount", "0.5", "-q",
                        "--backends", "torch", "--output", "run.json"]),
    ]
    for module, args in steps:
        result = _run(module, args, work)
        assert result.returncode == 0, f"{module} {args[0]} failed:\n{result.stderr[-3000:]}"
    return work


def test_pretraining_checkpoint_records_its_run(chain: Path) -> None:
    state = torch.load(chain / "pre.pt", weights_only=True)
    assert state["format"] == "supcon.pretrain" and state["epoch"] == 1 and state["dataset"]["name"] == "digits"
    assert len(state["history"]) == 1 and state["history"][0]["steps"] == 1293 // 128


def test_linear_head_gives_an_ordinary_classifier_better_than_chance(chain: Path) -> None:
    checkpoint = load_checkpoint(chain / "classifier.pt")
    assert checkpoint.spec.arch == "resnet18" and checkpoint.spec.num_classes == 10
    record = checkpoint.history[-1]
    assert record["step"] == "supcon-linear" and record["pretrain_epochs"] == 1
    metrics = json.loads((chain / "eval" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(record["test"]["accuracy"])  # the folded head predicts the same
    assert metrics["accuracy"] > 0.5 and metrics["samples"] == 360
    assert len(metrics["confusion_matrix"]) == 10 and sum(map(sum, metrics["confusion_matrix"])) == 360
    assert set(metrics["per_class"]) == {str(i) for i in range(10)}
    assert (chain / "eval" / "confusion.png").stat().st_size > 1000


def test_tsne_and_compression_ran_on_the_result(chain: Path) -> None:
    assert (chain / "tsne.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((chain / "run.json").read_text())
    assert str(report["model"]["baseline"]).endswith("classifier.pt")
    assert report["compressed"]["sparsity"] == pytest.approx(0.5, abs=0.01)


def test_baseline_takes_arch_data_and_budget_from_the_pretraining_run(chain: Path) -> None:
    result = _run("supcon", ["baseline", "--budget-from", "pre.pt", "-o", "ce.pt", "-q"], chain)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_checkpoint(chain / "ce.pt")
    assert checkpoint.spec.arch == "resnet18" and checkpoint.spec.dataset == "digits"
    assert checkpoint.history[0]["epochs"] == 2  # 1 SupCon epoch x 2 views
