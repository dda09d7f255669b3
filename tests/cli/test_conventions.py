"""CLI conventions shared by every command: --version, a bare command, `list` for pipes and machines, one spelling
of output paths, --device, and exit codes (0 ok, 1 runtime failure, 2 usage error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_cli

import compressor
from compressor.errors import CompressorError, RuntimeFailure

ROOT = Path(__file__).resolve().parents[2]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


def _script(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the installed console script `name` (stdout and stderr are pipes, not terminals)."""
    script = Path(sys.executable).with_name(name)
    if not script.exists():
        pytest.skip(f"console script {script} is not installed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(script), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_version_prints_the_package_version_and_exits_0() -> None:
    assert run_cli("compressor", ["--version"]) == (0, f"compressor {compressor.__version__}\n", "")
    code, stdout, _ = run_cli("supcon", ["--version"])
    assert code == 0 and stdout == f"supcon (compressor {compressor.__version__})\n"


def test_a_bare_command_prints_the_help_without_an_error_line(tmp_path: Path) -> None:
    result = _script("compressor", [], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage: compressor" in result.stdout and "sweep" in result.stdout
    assert "error" not in result.stderr.lower() and result.stderr.strip() == ""
    code, stdout, stderr = run_cli("supcon", [])
    assert code == 0 and "Usage: supcon" in stdout and stderr == ""


def test_help_imports_neither_torch_nor_the_strategies() -> None:
    """`compressor --help` and `run --help` answer without importing torch (its import alone takes seconds)."""
    code = ("import sys; from compressor.cli import main\n"
            "for args in (['--help'], ['run', '--help']):\n"
            "    try: main(args)\n"
            "    except SystemExit: pass\n"
            "heavy = sorted(m for m in ('torch', 'torch_pruning', 'onnxruntime', 'compressor.strategies')"
            " if m in sys.modules)\n"
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr


def test_run_help_groups_its_options_in_panels() -> None:
    code, stdout, _ = run_cli("compressor", ["run", "--help"])
    panels = [line.split("─ ")[1].split(" ─")[0] for line in stdout.splitlines() if line.startswith("╭─ ")]
    assert code == 0 and panels == ["Options", "Strategy", "Model and data", "Recovery", "Measurement", "Output"]


def test_the_package_root_loads_names_on_first_use() -> None:
    import compressor.measure.harness  # noqa: F401 - the subpackage named like the API function

    assert compressor.measure is compressor.api.measure and compressor.compress is compressor.api.compress
    assert set(compressor.__all__) <= set(dir(compressor))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        compressor.nonsense  # noqa: B018


def test_list_piped_keeps_every_name_and_description_on_one_line(tmp_path: Path) -> None:
    from compressor.data import list_datasets
    from compressor.models.zoo import list_archs
    from compressor.strategies.registry import get_strategy

    result = _script("compressor", ["list"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = [line.split("\t") for line in lines if "\t" in line]
    assert rows[0] == ["strategy", "parameter", "type", "default", "description"]
    assert all(len(row) == 5 for row in rows)
    description = get_strategy("layer-sensitive").description
    assert ["layer-sensitive", "", "", "", description] in rows
    assert ["l1", "amount", "float", "0.5", get_strategy("l1").param("amount").help] in rows
    also = "also torchvision:NAME, timm:NAME, package.module:factory"
    assert f"architectures: {', '.join(list_archs())}; {also}" in lines
    assert f"datasets: {', '.join(list_datasets())}" in lines


def test_list_json_describes_strategies_architectures_and_datasets() -> None:
    from compressor.data import list_datasets

    code, stdout, stderr = run_cli("compressor", ["list", "--json"])
    assert code == 0, stderr
    found = json.loads(stdout)
    strategies = {s["name"]: s for s in found["strategies"]}
    l1 = strategies["l1"]
    assert l1["source"].startswith("compressor.") and l1["description"].startswith("L1-magnitude")
    params = {p["name"]: p for p in l1["params"]}
    assert params["amount"]["type"] == "float" and params["amount"]["default"] == 0.5 and params["amount"]["help"]
    assert params["scope"] == {"name": "scope", "type": "global|layer", "default": "global",
                               "help": params["scope"]["help"]}
    assert "layer-sensitive" in strategies and "resnet18" in found["architectures"]
    assert found["datasets"] == list_datasets() and found["plugin_errors"] == []


@pytest.mark.parametrize("spelling", ["-o", "--output", "--out"])
def test_sweep_and_supcon_evaluate_take_every_output_spelling(spelling: str, tmp_path: Path) -> None:
    # Each command gets past its output option and stops at the next check, which names that check.
    code, _, stderr = run_cli("compressor", ["sweep", spelling, str(tmp_path / "s"), "--strategies", "l1",
                                             "--shard", "2/2"])
    assert code == 2 and "--shard must be i/n" in stderr
    code, _, stderr = run_cli("supcon", ["evaluate", str(tmp_path / "c.pt"), spelling, str(tmp_path / "e"),
                                         "--split", "train"])
    assert code == 2 and "--split must be test or calib" in stderr


@pytest.mark.parametrize("command", [["sweep", "--strategies", "l1"], ["report", "runs"]])
def test_output_is_required_once(command: list[str], tmp_path: Path) -> None:
    code, _, stderr = run_cli("compressor", command)
    assert (code, stderr) == (2, "error: Missing option '--output' / '-o'\n")
    code, _, stderr = run_cli("compressor", [*command, "-o", str(tmp_path / "a"), "--out", str(tmp_path / "b")])
    assert code == 2 and "disagree; give -o/--output once" in stderr


def test_sweep_passes_the_device_to_every_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import compressor.sweep

    seen = []

    def fake_sweep(spec, out_dir, **kwargs):
        seen.append(spec.run_args)
        return {"cells": 1, "done": 1, "failed": 0, "skipped": 0}

    monkeypatch.setattr(compressor.sweep, "run_sweep", fake_sweep)
    for extra in ([], ["--device", "cpu"]):
        code, _, stderr = run_cli("compressor", ["sweep", "-o", str(tmp_path), "--strategies", "l1", "--threads",
                                                 "1", *extra])
        assert code == 0, stderr
    assert seen == [["--threads", "1"], ["--device", "cpu", "--threads", "1"]]


def test_run_and_train_hand_the_device_to_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import compressor.models.baselines
    import compressor.pipeline

    devices = []

    def stop(*args, **kwargs):
        devices.append(kwargs["device"] if "device" in kwargs else args[0].device)
        raise RuntimeFailure("stopped here")

    monkeypatch.setattr(compressor.pipeline, "run", stop)
    monkeypatch.setattr(compressor.models.baselines, "train_baseline", stop)
    assert run_cli("compressor", ["run", "-s", "l1", "--device", "cpu", "-o", str(tmp_path / "r.json")])[0] == 1
    assert run_cli("compressor", ["train", "-o", str(tmp_path / "t.pt"), "--device", "cpu"])[0] == 1
    assert run_cli("compressor", ["train", "-o", str(tmp_path / "t.pt")])[0] == 1
    assert devices == ["cpu", "cpu", "auto"]


@NO_CUDA
@pytest.mark.parametrize("program, args", [
    ("compressor", ["run", "-s", "l1", "--dry-run"]),
    ("compressor", ["train", "-o", "{tmp}/t.pt"]),
    ("compressor", ["sweep", "-o", "{tmp}/s", "--strategies", "l1"]),
    ("supcon", ["baseline", "-o", "{tmp}/b.pt", "--epochs", "1"]),
    ("supcon", ["pretrain", "-o", "{tmp}/p.pt"]),
    ("supcon", ["linear", "{tmp}/pre.pt", "-o", "{tmp}/c.pt"]),
])
def test_an_unavailable_device_is_one_line_and_exit_code_2(program: str, args: list[str], tmp_path: Path) -> None:
    code, _, stderr = run_cli(program, [a.format(tmp=tmp_path) for a in args] + ["--device", "cuda"])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "cuda" in lines[0], stderr
    assert not list(tmp_path.iterdir()), "nothing is written before the device is checked"


@pytest.mark.parametrize("program, args", [
    ("compressor", ["train", "-o", "{tmp}/t.pt"]),
    ("compressor", ["run", "-s", "l1", "--dry-run"]),
    ("supcon", ["baseline", "-o", "{tmp}/b.pt", "--epochs", "1"]),
])
def test_an_unknown_device_names_the_choices(program: str, args: list[str], tmp_path: Path) -> None:
    code, _, stderr = run_cli(program, [a.format(tmp=tmp_path) for a in args] + ["--device", "tpu"])
    assert (code, stderr) == (2, "error: unknown device 'tpu'; choose one of: auto, cpu, cuda, cuda:N, mps\n")


def test_diverged_training_exits_1_and_a_bad_option_exits_2(tmp_path: Path) -> None:
    code, _, stderr = run_cli("compressor", ["train", "-o", str(tmp_path / "t.pt"), "--epochs", "1", "--lr", "1e9",
                                             "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert code == 1, stderr
    assert stderr.startswith("error: training diverged: loss is") and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t.pt").exists()
    code, _, stderr = run_cli("compressor", ["train", "-o", str(tmp_path / "t.pt"), "--epochs", "one"])
    assert code == 2 and stderr.startswith("error: Invalid value for '--epochs'")


def test_a_full_disk_is_a_runtime_failure_and_an_unwritable_path_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from compressor._util import preflight

    (tmp_path / "file").write_text("x")
    with pytest.raises(CompressorError, match="is a file, not a directory") as usage:
        preflight.ensure_writable_dir(tmp_path / "file" / "sub", "the output")
    assert not isinstance(usage.value, RuntimeFailure)
    real = shutil.disk_usage
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda p: real(p)._replace(free=5_000_000))
    with pytest.raises(RuntimeFailure, match="only 5 MB free on its disk"):
        preflight.ensure_writable_file(tmp_path / "r.json", "the report", need_bytes=10_000_000)


def test_a_failed_atomic_write_is_a_runtime_failure_and_keeps_the_old_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from compressor._util import fileio

    target = tmp_path / "r.json"
    fileio.write_json_atomic({"old": 1}, target)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", full)
    with pytest.raises(RuntimeFailure, match=f"cannot write {target}: No space left on device"):
        fileio.write_json_atomic({"new": 2}, target)

    def torch_full(obj, path):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(fileio.torch, "save", torch_full)
    with pytest.raises(RuntimeFailure, match="cannot write .*m.pt: .*unexpected pos"):
        fileio.save_torch_atomic({}, tmp_path / "m.pt")
    assert json.loads(target.read_text()) == {"old": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
