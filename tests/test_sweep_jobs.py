"""Sweeps on several jobs: the timing gate, per-job environments, per-cell timeouts and dry runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import compressor.sweep.runner
from compressor._util.device import all_cores
from compressor._util.timing_gate import GATE_ENV, TimingGate
from compressor.sweep import Pipeline, SweepSpec, run_sweep

REPORT = next((Path(__file__).parents[1] / "reports").rglob("runs/*.json"))  # any committed run report


def test_the_gate_lets_cells_compute_together_and_time_alone(tmp_path: Path) -> None:
    path, events = tmp_path / "timing.gate", []
    first, second = TimingGate(path), TimingGate(path)
    first.share()
    second.share()  # two computing cells hold the gate together

    def time_alone() -> None:
        with TimingGate(path).exclusive():
            events.append("timing starts")
            time.sleep(0.3)
            events.append("timing ends")

    def start_computing() -> None:
        TimingGate(path).share()
        events.append("a new cell computes")

    timer = threading.Thread(target=time_alone)
    timer.start()
    time.sleep(0.3)
    assert events == [], "a cell waits to time while others compute"
    newcomer = threading.Thread(target=start_computing)
    newcomer.start()
    time.sleep(0.3)
    assert events == [], "a cell that starts computing queues behind the one waiting to time"
    first.close()
    second.close()
    timer.join(timeout=10)
    newcomer.join(timeout=10)
    assert events == ["timing starts", "timing ends", "a new cell computes"]


def test_two_cells_that_both_wait_to_time_do_not_hold_each_other_out(tmp_path: Path) -> None:
    path, done = tmp_path / "timing.gate", []
    gates = [TimingGate(path), TimingGate(path)]
    for gate in gates:
        gate.share()

    def time_then_compute(gate: TimingGate) -> None:
        with gate.exclusive():
            time.sleep(0.1)
        done.append(gate.shared)

    threads = [threading.Thread(target=time_then_compute, args=(gate,)) for gate in gates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert done == [True, True], "each timed in turn and went back to computing"


def _fake_cells(monkeypatch: pytest.MonkeyPatch, log: Path, code: str) -> None:
    """Every cell runs `code` (with the report path as argv[1] and `log` as argv[2]) instead of `compressor run`."""
    def fake_command(cell: object, spec: object, report: Path, *_: object) -> list[str]:
        return [sys.executable, "-c", code, str(report), str(log)]

    monkeypatch.setattr(compressor.sweep.runner, "cell_command", fake_command)


REPORTING_CELL = f"""
import json, os, shutil, sys, time
started = time.time()
time.sleep(1.0)  # long beside a process start-up, so two cells started together overlap even on a loaded machine
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
shutil.copy({str(REPORT)!r}, sys.argv[1])
with open(sys.argv[2], "a") as log:
    log.write(json.dumps({{"start": started, "end": time.time(), "threads": os.environ.get("OMP_NUM_THREADS"),
                          "gate": os.environ.get({GATE_ENV!r})}}) + "\\n")
"""


def test_jobs_run_cells_at_once_each_with_its_share_of_threads_and_the_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "cells.log"
    _fake_cells(monkeypatch, log, REPORTING_CELL)
    spec = SweepSpec([Pipeline("l1")], amounts=(0.2, 0.4, 0.6, 0.8))
    counts = run_sweep(spec, tmp_path / "out", jobs=2, show_progress=False)
    assert counts == {"cells": 4, "skipped": 0, "done": 4, "failed": 0}
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    most = max(sum(r["start"] <= other["start"] < r["end"] for r in runs) for other in runs)
    assert most == 2, "two cells ran at once, never three"
    assert {r["threads"] for r in runs} == {str(max(1, all_cores() // 2))}
    assert {r["gate"] for r in runs} == {str(tmp_path / "out" / "timing.gate")}
    assert len(list((tmp_path / "out" / "cells").glob("*.json"))) == 4
    again = run_sweep(spec, tmp_path / "out", jobs=2, show_progress=False)
    assert again["skipped"] == 4 and again["done"] == 0


def test_one_job_gets_no_gate_and_parallel_timing_none_either(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    log = tmp_path / "cells.log"
    _fake_cells(monkeypatch, log, REPORTING_CELL)
    run_sweep(SweepSpec([Pipeline("l1")]), tmp_path / "a", show_progress=False)
    run_sweep(SweepSpec([Pipeline("l1")]), tmp_path / "b", jobs=2, timing="parallel", show_progress=False)
    assert [json.loads(line)["gate"] for line in log.read_text().splitlines()] == [None, None]


def test_a_cell_past_its_timeout_is_killed_with_what_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pids = tmp_path / "grandchild.pid"
    hanging = ("import subprocess, sys, time\n"
               "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
               "open(sys.argv[2], 'w').write(str(child.pid))\n"
               "time.sleep(120)\n")
    _fake_cells(monkeypatch, pids, hanging)
    spec = SweepSpec([Pipeline("l1")], cell_timeout=3)  # room for a loaded machine to start the grandchild
    started = time.monotonic()
    counts = run_sweep(spec, tmp_path / "out", show_progress=False)
    assert counts["failed"] == 1 and time.monotonic() - started < 60
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "out" / "cells").glob("*.json")]
    assert record["status"] == "failed" and record["error"] == "timed out after 3 s (cell_timeout); killed"
    grandchild = int(pids.read_text())
    time.sleep(0.5)
    status = Path(f"/proc/{grandchild}/status")
    assert not status.exists() or "\nState:\tZ" in status.read_text(), "the process the cell started was killed too"


def test_a_grid_file_sets_the_cell_timeout_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    from compressor.errors import CompressorError
    from compressor.sweep import load_grid

    grid = tmp_path / "grid.toml"
    grid.write_text('strategies = ["l1"]\ncell_timeout = 600\n')
    assert load_grid(grid).cell_timeout == 600.0
    grid.write_text('strategies = ["l1"]\ncell_timeout = -1\n')
    with pytest.raises(CompressorError, match="cell_timeout must be a positive number of seconds; got -1"):
        load_grid(grid)


def test_dry_run_lists_every_cell_checks_each_and_writes_nothing(tmp_path: Path) -> None:
    from conftest import run_cli

    out = tmp_path / "sweep"
    code, stdout, stderr = run_cli("compressor", ["sweep", "-o", str(out), "--strategies", "l1", "--amounts",
                                                  "0.3,0.6", "--datasets", "digits", "--dry-run"])
    assert code == 0, stderr
    lines = stdout.splitlines()
    cells = [line.split("\t") for line in lines if "\t" in line]
    assert len(cells) == 2 and all(status == "to run" for _, status, _ in cells)
    assert all(command.startswith("compressor run --strategy l1 --seed 0") for *_, command in cells)
    assert lines[-1] == "dry run OK: 2 cells in this shard, 2 to run, 0 recorded; every cell's arguments check out"
    assert not (out / "cells").exists() and not (out / "runs").exists()
    code, stdout, stderr = run_cli("compressor", ["sweep", "-o", str(out), "--strategies", "l1", "--datasets",
                                                  "digits,no-such-data", "--dry-run"])
    assert code == 2 and stderr.startswith("error: 1 of 2 cells would fail: model-no-such-data-l1-0.5")
    assert "unknown dataset 'no-such-data'" in stderr


def test_bad_jobs_and_timing_are_one_line_usage_errors(tmp_path: Path) -> None:
    from conftest import run_cli

    for option, message in ((["--jobs", "0"], "--jobs must be 1 or more; got 0"),
                            (["--timing", "sometimes"], "--timing must be serial or parallel; got 'sometimes'"),
                            (["--cell-timeout", "0"], "--cell-timeout must be a positive number of seconds")):
        code, _, stderr = run_cli("compressor", ["sweep", "-o", str(tmp_path / "s"), "--strategies", "l1", *option])
        assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_sweep_help_names_the_new_options() -> None:
    from conftest import run_cli

    code, stdout, _ = run_cli("compressor", ["sweep", "--help"])
    assert code == 0 and all(option in stdout for option in ("--jobs", "--timing", "--cell-timeout", "--dry-run"))


def test_timing_waits_for_computing_cells_and_child_processes_pass_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from compressor._util import timing_gate

    gate = tmp_path / "timing.gate"
    monkeypatch.setenv(GATE_ENV, str(gate))
    monkeypatch.setattr(timing_gate, "_process_gate", None)
    other = TimingGate(gate)
    other.share()  # another cell computes for half a second more
    threading.Timer(0.5, other.close).start()
    timing_gate.join_timing_gate()  # as `compressor run` does when it starts
    started = time.monotonic()
    with timing_gate.timing_alone():
        waited = time.monotonic() - started
        assert os.environ[timing_gate.HELD_ENV] == "1"
        nested = timing_gate._gate_from_env()
    assert waited >= 0.4, "the timing began only after the other cell stopped computing"
    assert nested is None, "a process started while this one times passes the gate instead of waiting on it"
    assert timing_gate.HELD_ENV not in os.environ and timing_gate._process_gate.shared, "back to computing"
    timing_gate._process_gate.close()


def _tiny_checkpoint(path: Path, digits) -> Path:
    """An untrained ResNet18 at 16 px: enough to prune and measure when what is tested is the bookkeeping."""
    import torch

    from compressor.models.checkpoint import Checkpoint, ModelSpec, save_checkpoint
    from compressor.models.zoo import build_model

    torch.manual_seed(0)
    info = digits.info
    save_checkpoint(Checkpoint(ModelSpec("resnet18", 10, 1, 16, "digits", info.classes, info.mean, info.std),
                               build_model("resnet18", 10, 1)), path)
    return path


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "compressor", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


def test_the_submitit_local_executor_runs_cells_that_record_themselves_and_report_reads(
        tmp_path: Path, digits, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("submitit")
    from conftest import run_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _tiny_checkpoint(tmp_path / "base.pt", digits)
    grid = ["--strategies", "l1", "--amounts", "0.9", "--model", "base.pt", "--backends", "torch", "--compress",
            "none", "--quiet"]
    code, stdout, stderr = run_cli("compressor", ["sweep", "-o", "slurm-like", "--executor", "submitit-local",
                                                  "--executor-param", "timeout_min=20", *grid])
    assert code == 0, stderr
    assert "1 cells in this shard: 1 run, 0 failed" in stdout
    assert list((tmp_path / "slurm-like" / "submitit").glob("*_log.err")), "submitit kept the job's logs"
    _, stdout, _ = run_cli("compressor", ["sweep", "-o", "slurm-like", "--executor", "submitit-local", *grid])
    assert "1 cells in this shard: 0 run, 0 failed, 1 already recorded" in stdout, "recorded cells are skipped"
    code, _, stderr = run_cli("compressor", ["report", "slurm-like", "-o", "merged"])
    assert code == 0, stderr
    rows = json.loads((tmp_path / "merged" / "results.json").read_text())["rows"]
    assert [row["amount"] for row in rows] == [0.9]


def test_bad_executor_choices_are_one_line_usage_errors(tmp_path: Path) -> None:
    from conftest import run_cli

    for option, message in ((["--executor", "cloud"], "--executor must be one of local, submitit-local, slurm"),
                            (["--executor-param", "a=1"], "--executor-param is for --executor slurm"),
                            (["--executor", "submitit-local", "--executor-param", "nonsense"],
                             "--executor-param takes KEY=VALUE; got 'nonsense'")):
        code, _, stderr = run_cli("compressor", ["sweep", "-o", str(tmp_path / "s"), "--strategies", "l1", *option])
        assert code == 2 and message in stderr, stderr
