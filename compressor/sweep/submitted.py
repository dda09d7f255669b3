"""A sweep's cells as submitit jobs: on Slurm (`--executor slurm`) or on submitit's local executor
(`--executor submitit-local`, to try a recipe before a cluster, and for the tests).

Each job runs one cell exactly as `compressor sweep` does on this machine (`run_cell`) and records it itself,
atomically, as `DIR/cells/KEY.json` in the shared sweep directory; so cells stay independent and resumable, the
submitting process may be interrupted without losing a finished cell, and `compressor report DIR` merges them as it
merges local sweeps and shards. Needs the optional extra: `pip install 'compressor[slurm]'`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console

from compressor.errors import CompressorError
from compressor.sweep.grid import Cell, SweepSpec
from compressor.sweep.runner import record_cell, run_cell, start_sweep, sweep_progress, write_results

EXECUTORS = ("local", "submitit-local", "slurm")  # what `compressor sweep --executor` takes


def make_executor(kind: str, folder: Path, params: dict[str, Any], cell_timeout: float | None) -> Any:
    """A submitit executor writing its logs under `folder`: `slurm` (submitit's AutoExecutor, which needs `sbatch`)
    or `submitit-local`; `params` go to `update_parameters` (e.g. slurm_partition, gpus_per_node, cpus_per_task)."""
    try:
        import submitit
    except ImportError:
        raise CompressorError(f"--executor {kind} needs submitit: pip install 'compressor[slurm]'") from None
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm" if kind == "slurm" else "local")
    settings = dict(params)
    if cell_timeout is not None and "timeout_min" not in settings:  # the job outlives its cell's own timeout
        settings["timeout_min"] = math.ceil(cell_timeout / 60) + 5
    try:
        executor.update_parameters(**settings)
    except (TypeError, ValueError, NameError, AssertionError) as exc:  # what submitit raises for a bad parameter
        raise CompressorError(f"--executor-param: {exc}") from None
    return executor


def run_and_record(cell: Cell, spec: SweepSpec, out_dir: Path, bn_flag: str, recovery_file: Path | None) -> str:
    """The job: run the cell and write its record atomically; returns its status (done or failed)."""
    record = run_cell(cell, spec, out_dir, bn_flag, recovery_file)
    record_cell(record, out_dir)
    return record.status


def submit_sweep(spec: SweepSpec, out_dir: Path, executor: Any, *, shard: tuple[int, int] = (0, 1),
                 retry_failed: bool = False, show_progress: bool = True,
                 console: Console | None = None) -> dict[str, int]:
    """Submit this shard's unfinished cells as one job array, wait for them, rebuild results.jsonl; return counts
    of done, failed and skipped cells (a job that died before recording its cell counts as failed)."""
    console = console or Console(stderr=True)
    start = start_sweep(spec, out_dir, shard, retry_failed)
    counts = start.counts()
    with executor.batch():
        jobs = [(cell, executor.submit(run_and_record, cell, spec, out_dir, start.bn_flag, start.recovery_file))
                for cell in start.todo]
    with sweep_progress(console, show_progress) as progress:
        overall = progress.add_task(f"{len(jobs)} jobs submitted", total=counts["cells"], completed=counts["skipped"])
        for cell, job in jobs:
            try:
                status = job.result()
            except Exception as exc:  # noqa: BLE001 - a job killed by the scheduler, or its node lost
                status = "failed"
                console.print(f"[yellow]job {job.job_id} of cell {cell.key} ended without a record: "
                              f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}"
                              "[/yellow]")
            counts[status] += 1
            progress.advance(overall)
    write_results(out_dir)
    return counts
