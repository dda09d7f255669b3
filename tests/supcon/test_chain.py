"""The whole SupCon chain through the command lines on digits: pretrain -> linear -> evaluate -> tsne -> compress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from compressor.models.checkpoint import load_checkpoint


def _run(module: str, args: list[str]) -> tuple[int, str, str]:
    """`supcon` or `compressor` called in this process (conftest.run_cli): the same main(), without the ~5 s a fresh
    interpreter spends importing torch for each of the chain's commands."""
    from conftest import run_cli

    return run_cli(module, args)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import quick_timing_plan

    work = tmp_path_factory.mktemp("supcon")
    cache = ["--cache-dir", str(work / "cache")]
    steps = [
        ("supcon", ["pretrain", "--arch", "resnet18", "--epochs", "1", "--batch-size", "128", "-o",
                    str(work / "pre.pt"), "-q", *cache]),
        ("supcon", ["linear", str(work / "pre.pt"), "-o", str(work / "classifier.pt"), "--epochs", "10", "-q",
                    *cache]),
        ("supcon", ["evaluate", str(work / "classifier.pt"), "--out", str(work / "eval"), *cache]),
        ("supcon", ["tsne", str(work / "pre.pt"), "-o", str(work / "tsne.png"), "--samples", "150", "-q",
                    "--classifier", f"linear={work / 'classifier.pt'}", *cache]),
        # no zip/xz copies of the ~45 MB files (half a minute on 2 cores): the chain checks the pruning, not sizes
        ("compressor", ["run", "--model", str(work / "classifier.pt"), "--strategy", "l1", "--amount", "0.5", "-q",
                        "--backends", "torch", "--compress", "none", "--output", str(work / "run.json")]),
    ]
    with quick_timing_plan():
        for module, args in steps:
            code, _, stderr = _run(module, args)
            assert code == 0, f"{module} {args[0]} failed:\n{stderr[-3000:]}"
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
    code, _, stderr = _run("supcon", ["baseline", "--budget-from", str(chain / "pre.pt"), "-o", str(chain / "ce.pt"),
                                      "-q"])
    assert code == 0, stderr[-3000:]
    checkpoint = load_checkpoint(chain / "ce.pt")
    assert checkpoint.spec.arch == "resnet18" and checkpoint.spec.dataset == "digits"
    assert checkpoint.history[0]["epochs"] == 2  # 1 SupCon epoch x 2 views
