"""Faults: SIGKILL at random moments never leaves a half-written file that a reader trusts; a full disk or an
unwritable output fails before the expensive work; diverging training stops clearly and keeps the last good file."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import run_cli

from compressor.models.checkpoint import load_checkpoint

WRITER = r"""
import sys, torch
from pathlib import Path
from compressor.models.checkpoint import Checkpoint, ModelSpec, save_checkpoint
from compressor._util.fileio import save_torch_atomic, write_json_atomic
from compressor.models.zoo import build_model

out = Path(sys.argv[1])
spec = ModelSpec("resnet18", 10, 1, 32, "digits", tuple("0123456789"), (0.5,), (0.25,))
model = build_model("resnet18", 10, 1)
print("ready", flush=True)
for i in range(10**6):
    with torch.no_grad():
        model.fc.bias.fill_(i)
    save_checkpoint(Checkpoint(spec, model, [{"step": "write", "i": i}]), out / "model.pt")
    write_json_atomic({"i": i, "rows": list(range(20000))}, out / "results.json")
    save_torch_atomic({"features": torch.full((500, 64), float(i))}, out / "features.pt")
"""


def _check_every_file(out: Path) -> None:
    """Each file is absent or whole and self-consistent; leftovers are hidden temporary directories only."""
    if (out / "model.pt").exists():
        checkpoint = load_checkpoint(out / "model.pt")
        assert torch.all(checkpoint.model.fc.bias == checkpoint.history[-1]["i"])
    if (out / "results.json").exists():
        assert json.loads((out / "results.json").read_text())["rows"][-1] == 19999
    if (out / "features.pt").exists():
        features = torch.load(out / "features.pt", weights_only=True)["features"]
        assert features.shape == (500, 64) and torch.all(features == features[0, 0])
    assert all(p.name in ("model.pt", "results.json", "features.pt") or (p.name.startswith(".") and p.is_dir())
               for p in out.iterdir())


def test_atomic_writes_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(8)
    for _ in range(4):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 1.5))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        _check_every_file(tmp_path)
    assert (tmp_path / "model.pt").exists()


def test_a_full_disk_fails_before_any_training(tmp_path: Path, monkeypatch) -> None:
    import shutil

    from compressor._util import preflight

    real = shutil.disk_usage
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: real(p)._replace(free=5_000_000))
    code, _, stderr = run_cli("compressor", ["run", "-s", "l1", "--cache-dir", str(tmp_path / "cache"),
                                             "--output", str(tmp_path / "r.json"), "--quiet"])
    assert code == 1
    assert stderr.startswith("error: cannot write the report") and "only 5 MB free on its disk" in stderr
    assert not (tmp_path / "cache").exists()  # the baseline was never trained


def test_diverging_training_names_the_step_and_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "base.pt"
    code, _, stderr = run_cli("compressor", ["train", "-o", str(target), "--epochs", "1",
                                             "--quiet"])
    assert code == 0, stderr
    before = target.read_bytes()
    code, _, stderr = run_cli("compressor", ["train", "-o", str(target), "--epochs", "1",
                                             "--lr", "1e9", "--quiet"])
    assert code == 1
    assert "training diverged: loss is" in stderr and "at epoch 1, step" in stderr
    assert target.read_bytes() == before


def test_a_killed_writers_leftovers_are_removed_by_the_next_write_once_stale(tmp_path: Path) -> None:
    from compressor._util.fileio import STALE_AFTER_S, write_json_atomic

    old = time.time() - STALE_AFTER_S - 60
    stale, fresh = tmp_path / ".r[1].json.k1.tmp", tmp_path / ".r[1].json.k2.tmp"  # fresh: maybe a live writer
    other, lookalike = tmp_path / ".other.json.k3.tmp", tmp_path / ".r1.json.k4.tmp"
    for leftover in (stale, fresh, other, lookalike):
        leftover.mkdir()
        (leftover / "partial").write_text("half")
    for leftover in (stale, other, lookalike):
        os.utime(leftover, (old, old))
    write_json_atomic({"ok": 1}, tmp_path / "r[1].json")
    assert json.loads((tmp_path / "r[1].json").read_text()) == {"ok": 1}
    assert not stale.exists() and fresh.exists() and other.exists() and lookalike.exists()
