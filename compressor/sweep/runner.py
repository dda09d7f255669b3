"""Running a sweep's cells on this machine: one `compressor run` process per cell, `jobs` at a time, each recorded
atomically as `DIR/cells/KEY.json` when it ends (so a killed sweep resumes where it stopped)."""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from compressor._util.device import all_cores
from compressor._util.fileio import write_atomic, write_json_atomic
from compressor._util.timing_gate import GATE_ENV
from compressor.errors import CompressorError
from compressor.report.schema import CellRecord, RunRow, read_cell_records, read_run_report
from compressor.sweep.grid import Cell, SweepSpec, cell_command, sweep_bn_flag, validate, write_recovery_file


def write_results(out_dir: Path) -> list[dict[str, Any]]:
    """Rebuild results.jsonl (one row per recorded cell, finished or failed) atomically; return the rows.

    A row is the cell's key, status and settings, then the `RunRow` of its report, or its error."""
    rows = []
    for key, record in read_cell_records(out_dir).items():
        row = {"key": key, "status": record.status, **record.cell}
        if record.status == "done" and record.report is not None:
            row.update(RunRow.from_report(record.report, f"cells/{key}.json").as_dict())
        else:
            row["error"] = record.error
        rows.append(row)
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    write_atomic(out_dir / "results.jsonl", lambda tmp: tmp.write_text(text))
    return rows


def pending_cells(spec: SweepSpec, out_dir: Path, shard: tuple[int, int] = (0, 1),
                  retry_failed: bool = False) -> tuple[list[Cell], list[Cell]]:
    """(this shard's cells, those of them still to run: not recorded, or recorded as failed with `retry_failed`)."""
    cells = [c for i, c in enumerate(spec.cells()) if i % shard[1] == shard[0]]
    recorded = read_cell_records(out_dir)
    return cells, [c for c in cells if c.key not in recorded or (retry_failed and recorded[c.key].status != "done")]


Timing = Literal["serial", "parallel"]


@dataclass(frozen=True)
class SweepStart:
    """What every way of running a sweep prepares alike: this shard's cells, those still to run, and the one
    BatchNorm flag and [recovery] file every cell gets."""

    cells: list[Cell]
    todo: list[Cell]
    bn_flag: str
    recovery_file: Path | None

    def counts(self) -> dict[str, int]:
        """The counts a sweep returns, before any cell ran."""
        return {"cells": len(self.cells), "skipped": len(self.cells) - len(self.todo), "done": 0, "failed": 0}


def start_sweep(spec: SweepSpec, out_dir: Path, shard: tuple[int, int], retry_failed: bool) -> SweepStart:
    """Validate the grid, decide its BatchNorm flag, write its [recovery] file and the cells/ folder."""
    validate(spec)
    bn_flag = sweep_bn_flag(spec)  # from the whole grid, so every shard gives its cells the same help
    recovery_file = write_recovery_file(spec.recovery, out_dir / "recovery.toml") if spec.recovery else None
    cells, todo = pending_cells(spec, out_dir, shard, retry_failed)
    (out_dir / "cells").mkdir(parents=True, exist_ok=True)
    return SweepStart(cells, todo, bn_flag, recovery_file)


def record_cell(record: CellRecord, out_dir: Path) -> None:
    """Write a finished cell's record atomically as DIR/cells/KEY.json."""
    write_json_atomic(record.to_dict(), out_dir / "cells" / f"{record.key}.json")


def sweep_progress(console: Console, show_progress: bool) -> Progress:
    """The progress display of a sweep: an overall bar and a line for what runs."""
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=not show_progress)


def run_sweep(spec: SweepSpec, out_dir: Path, *, shard: tuple[int, int] = (0, 1), retry_failed: bool = False,
              jobs: int = 1, timing: Timing = "serial", show_progress: bool = True,
              console: Console | None = None) -> dict[str, int]:
    """Run this shard's unfinished cells, `jobs` at a time; return counts of done, failed and skipped cells."""
    console = console or Console(stderr=True)
    if jobs < 1:
        raise CompressorError(f"--jobs must be 1 or more; got {jobs}")
    if timing not in ("serial", "parallel"):
        raise CompressorError(f"--timing must be serial or parallel; got {timing!r}")
    start = start_sweep(spec, out_dir, shard, retry_failed)
    todo, counts = start.todo, start.counts()
    gate = out_dir / "timing.gate" if jobs > 1 and timing == "serial" else None
    slots: queue.SimpleQueue[int] = queue.SimpleQueue()
    for slot in range(jobs):
        slots.put(slot)

    def run_in_a_slot(cell: Cell) -> CellRecord:
        slot = slots.get()
        try:
            return run_cell(cell, spec, out_dir, start.bn_flag, start.recovery_file,
                            job_env(slot, jobs, spec.run_args, gate))
        finally:
            slots.put(slot)

    with sweep_progress(console, show_progress) as progress, \
            ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sweep-job") as pool:
        overall = progress.add_task("sweep", total=counts["cells"], completed=counts["skipped"])
        running = progress.add_task("cell", total=None)
        futures = {pool.submit(run_in_a_slot, cell): cell for cell in todo}
        for finished, future in enumerate(itertools.chain([None], as_completed(futures))):
            if future is not None:
                cell, record = futures[future], future.result()
                counts[record.status] += 1
                record_cell(record, out_dir)
                write_results(out_dir)
                if record.status == "failed":
                    console.print(f"[yellow]cell {cell.key} failed: {record.error}[/yellow]")
                progress.advance(overall)
            if finished < len(todo):  # one job runs the cells in order; several: say how many run
                progress.update(running, description=todo[finished].key if jobs == 1 else
                                f"{min(jobs, len(todo) - finished)} cells at a time")
    write_results(out_dir)
    return counts


def job_env(slot: int, jobs: int, run_args: list[str], gate: Path | None) -> dict[str, str] | None:
    """The environment of a cell run in job `slot` of `jobs`: its share of the CPU threads (unless the cells get
    --threads), its own GPU when several are visible, and the timing gate; None (inherit) for a single job."""
    if jobs == 1:
        return None
    env = dict(os.environ)
    if "--threads" not in run_args:
        env["OMP_NUM_THREADS"] = str(max(1, all_cores() // jobs))
    gpus = visible_gpus()
    if len(gpus) > 1:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    if gate is not None:
        env[GATE_ENV] = str(gate)
    return env


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use, as CUDA_VISIBLE_DEVICES names them (indices when it is unset)."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [name.strip() for name in listed.split(",") if name.strip()][:torch.cuda.device_count()]
    return [str(i) for i in range(torch.cuda.device_count())]


def run_cell(cell: Cell, spec: SweepSpec, out_dir: Path, bn_flag: str, recovery_file: Path | None,
              env: dict[str, str] | None = None) -> CellRecord:
    report_path = out_dir / "runs" / f"{cell.key}.json"
    command = cell_command(cell, spec, report_path, bn_flag, recovery_file)
    started = time.perf_counter()
    # in the sweep's process group, so an interrupt or a kill of the sweep reaches the cell as before
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _, stderr = process.communicate(timeout=spec.cell_timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        _, stderr = process.communicate()
        timed_out = True
    record = CellRecord(key=cell.key, command=command[2:], cell=cell.settings(),
                        seconds=round(time.perf_counter() - started, 1), status="failed")
    if timed_out:
        record.returncode = process.returncode
        record.error = f"timed out after {spec.cell_timeout:g} s (cell_timeout); killed"
        return record
    if process.returncode == 0:
        try:
            record.report = read_run_report(report_path)
        except CompressorError as exc:
            record.returncode, record.error = process.returncode, str(exc)
        else:
            record.status = "done"
        return record
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    record.returncode, record.error = process.returncode, lines[-1] if lines else f"exit code {process.returncode}"
    return record


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process it started (fresh timing processes, data workers), found through
    /proc's parent links; where there is no /proc, the process alone."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # a process that ended while we looked
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    doomed, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        doomed.append(current)
        frontier.extend(parents.get(current, []))
    for victim in doomed:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass
