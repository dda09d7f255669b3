"""Untrusted files: a checkpoint that smuggles code in is refused at every entry point, and the code never runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from compressor.models.checkpoint import Checkpoint, ModelSpec, save_checkpoint
from compressor.models.zoo import build_model


class Payload:
    """Unpickling this calls os.system: the marker file appears if anything loads it with full pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """A file laid out like a compressor checkpoint whose history carries a code payload, and its marker."""
    marker = tmp_path / "payload-ran"
    spec = ModelSpec("resnet18", 10, 1, 32, "digits", tuple(str(i) for i in range(10)), (0.5,), (0.25,))
    save_checkpoint(Checkpoint(spec, build_model("resnet18", 10, 1)), tmp_path / "good.pt")
    payload = torch.load(tmp_path / "good.pt", weights_only=True)
    path = tmp_path / "evil.pt"
    torch.save({**payload, "history": [Payload(marker)]}, path)
    return path, marker


def test_the_payload_is_real(evil: tuple[Path, Path]) -> None:
    path, marker = evil
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert marker.exists()


@pytest.mark.parametrize("program, args", [
    ("compressor", ["run", "-s", "l1", "--model", "{evil}", "--dry-run"]),
    ("compressor", ["bench", "--model", "{evil}", "--backends", "torch"]),
    ("compressor", ["export", "{tmp}/sub", "--model", "{evil}"]),
    ("compressor", ["score", "{evil}", "--data", "imagefolder:{tmp}"]),
    ("compressor", ["sweep", "--out", "{tmp}/sweep", "--strategies", "l1", "--model", "{evil}", "--quiet"]),
    ("supcon", ["linear", "{evil}", "-o", "{tmp}/c.pt"]),
    ("supcon", ["evaluate", "{evil}"]),
    ("supcon", ["tsne", "{evil}", "-o", "{tmp}/t.png"]),
], ids=["run", "bench", "export", "score", "sweep", "supcon-linear", "supcon-evaluate", "supcon-tsne"])
def test_every_entry_point_refuses_it_and_the_payload_never_runs(program: str, args: list[str],
                                                                  evil: tuple[Path, Path]) -> None:
    path, marker = evil
    code, stdout, stderr = run_cli(program, [a.format(evil=path, tmp=path.parent) for a in args])
    assert not marker.exists()
    if args[0] == "sweep":  # cells run in subprocesses; the sweep records the cell as failed, with the reason
        record = next((path.parent / "sweep" / "cells").glob("*.json")).read_text()
        assert code == 1 and "refusing to load checkpoint" in record
        return
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to load"), stderr
    assert "weights_only=True" in lines[0]


def test_the_exported_loader_refuses_it_too(evil: tuple[Path, Path], tmp_path: Path) -> None:
    path, marker = evil
    from compressor.models.checkpoint import load_checkpoint
    from compressor.openaimer.protocol import export_submission

    submission = tmp_path / "submission"
    export_submission(load_checkpoint(path.parent / "good.pt"), submission)
    (submission / "model.pt").write_bytes(path.read_bytes())
    script = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('l', sys.argv[1]); "
              "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.load_model(sys.argv[2])")
    result = subprocess.run([sys.executable, "-I", "-c", script, str(submission / "model_loader.py"),
                             str(submission / "model.pt")], capture_output=True, text=True)
    assert result.returncode != 0 and "Weights only load failed" in result.stderr
    assert not marker.exists()


def test_a_poisoned_feature_cache_entry_is_recomputed_not_run(tmp_path: Path) -> None:
    from compressor.data import load_dataset
    from supcon.linear import cached_features

    marker = tmp_path / "payload-ran"
    digits = load_dataset("digits")
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
    features, _ = cached_features(encoder, digits, "test", 8, "key", tmp_path, show_progress=False)
    entry = next((tmp_path / "features").glob("*.pt"))
    torch.save({"features": Payload(marker)}, entry)
    again, _ = cached_features(encoder, digits, "test", 8, "key", tmp_path, show_progress=False)
    assert not marker.exists() and torch.equal(features, again)
