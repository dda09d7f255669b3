"""Load during timing: CPU time other processes used between two /proc snapshots, and the report's flag."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compressor.measure.load import TICKS, UNDER_LOAD_CORES, CpuSnapshot, other_load, snapshot, watch_load
from compressor.report.schema import timed_under_load


def _fake_proc(root: Path, busy_ticks: int, steal_ticks: int, processes: dict[int, tuple[str, int]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    # user nice system idle iowait irq softirq steal
    (root / "stat").write_text(f"cpu  {busy_ticks} 0 0 500 0 0 0 {steal_ticks} 0 0\ncpu0 ...\n")
    for pid, (name, ticks) in processes.items():
        (root / str(pid)).mkdir(exist_ok=True)
        # pid (comm) state ppid ... utime (14th) stime (15th)
        (root / str(pid) / "stat").write_text(f"{pid} ({name}) R 1 0 0 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0\n")
    return root


def test_a_snapshot_reads_the_machine_and_each_process_from_proc(tmp_path: Path):
    proc = _fake_proc(tmp_path, 300, 7, {os.getpid(): ("python", 40), 77: ("my (odd) job", 120)})
    snap = snapshot(proc)
    assert snap is not None and snap.busy == 300 / TICKS and snap.steal == 7 / TICKS
    assert snap.own == 40 / TICKS and snap.others == {77: ("my (odd) job", 120 / TICKS)}
    assert snapshot(tmp_path / "missing") is None


def test_other_load_is_the_machines_busy_time_minus_our_own_per_second():
    start = CpuSnapshot(wall=10.0, busy=100.0, steal=1.0, own=20.0, others={7: ("make", 5.0), 8: ("idle", 3.0)})
    end = CpuSnapshot(wall=12.0, busy=104.0, steal=1.2, own=21.0, others={7: ("make", 7.5), 8: ("idle", 3.0)})
    load = other_load(start, end)
    assert load["other_cores"] == pytest.approx((4.0 - 1.0) / 2)  # 3 CPU seconds of others over 2 s of wall time
    assert load["steal_cores"] == pytest.approx(0.1) and load["under_load"] is True
    assert load["busiest"] == [{"process": "make", "cores": pytest.approx(1.25)}]  # only processes that ran
    quiet = CpuSnapshot(wall=12.0, busy=101.1, steal=1.0, own=21.0, others=start.others)
    assert other_load(start, quiet)["under_load"] is False  # 0.05 core: below the threshold
    assert other_load(None, end) == {"checked": False, "under_load": None}


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")
def test_a_busy_process_beside_the_timing_is_seen():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        with watch_load() as load:
            time.sleep(1.0)
    finally:
        busy.kill()
        busy.wait()
    # a spinning interpreter takes about a core of 2+; far above the tenth-of-a-core threshold on any machine
    assert load["checked"] and load["other_cores"] > 3 * UNDER_LOAD_CORES and load["under_load"] is True


def test_a_report_is_timed_under_load_when_any_timing_was():
    quiet = {"checked": True, "under_load": False}
    report = {"baseline": {"latency": {"torch": {"load": quiet}}},
              "compressed": {"latency": {"torch": {"load": quiet}, "onnxruntime": {"load": quiet}}}}
    assert timed_under_load(report) is False
    report["deployment"] = {"grid": [{"latency": {"load": {"checked": True, "under_load": True}}}]}
    assert timed_under_load(report) is True
    assert timed_under_load({"baseline": {"latency": {"torch": {"median_ms": 1.0}}}}) is None  # older reports
