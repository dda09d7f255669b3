"""ONNX Runtime latency measured in k fresh processes, because one process's median does not repeat in the next.

On shared cloud CPUs the machine's own speed moves between processes: scripts/ort_process_modes.py measured
per-process medians of one ResNet18 varying several-fold while a fixed matrix product timed in the same processes
moved with them (reports/latency-processes/). No session setting removes that. What repeats is the comparison
made inside one process, models interleaved: so each child process times every model and backend in
alternating rounds (`time_runners`), and a model's figure is the median of its per-process medians, a speed-up
the median of per-process ratios (`speedup`). Each child also times a fixed single-thread matrix product before
and after, the machine's speed while it ran (`machine_reference_ms`).

    python -m compressor.measure.processes JOB.json   # a child: prints its timings as JSON on stdout
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from compressor._util.timing_gate import timing_alone
from compressor.errors import RuntimeFailure
from compressor.measure.latency import TimingPlan, onnxruntime_runner, summarize, time_runners, torch_threads

REFERENCE_SIZE = 256


def machine_reference_ms(calls: int = 200) -> float:
    """Median ms of a fixed 256x256 float32 matrix product on one thread: how fast the machine is right now."""
    import torch

    a, b = torch.randn(REFERENCE_SIZE, REFERENCE_SIZE), torch.randn(REFERENCE_SIZE, REFERENCE_SIZE)
    times = []
    with torch_threads(1):
        for _ in range(20):
            a @ b
        for _ in range(calls):
            t0 = time.perf_counter()
            a @ b
            times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def child(job: dict[str, Any]) -> dict[str, Any]:
    """Time the job's ONNX files in this process, interleaved, as `latency_block` does in-process."""
    before = machine_reference_ms()
    runners = {key: onnxruntime_runner(entry["path"], job["in_channels"], job["input_size"], job["batch_size"],
                                       job["threads"], entry["backend"])
               for key, entry in job["runners"].items()}
    timings = time_runners(runners, batch_size=job["batch_size"], input_size=job["input_size"],
                           threads=job["threads"], plan=TimingPlan(**job["plan"]), rounds=job["rounds"])
    return {"timings": timings, "machine_reference_ms": (before + machine_reference_ms()) / 2}


def time_in_processes(files: dict[tuple[str, str], Path], *, in_channels: int, input_size: int,
                      batch_size: int, threads: int, plan: TimingPlan, rounds: int,
                      processes: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (model, ONNX Runtime backend): statistics pooled over `processes` fresh child processes that each time
    every file, interleaved; `median_ms` is the median of the process medians, recorded with every process's
    median, their spread and the machine reference of each process."""
    keys = {f"{name}|{backend}": (name, backend) for name, backend in files}
    job = {"runners": {key: {"path": str(files[pair]), "backend": pair[1]} for key, pair in keys.items()},
           "in_channels": in_channels, "input_size": input_size, "batch_size": batch_size, "threads": threads,
           "plan": asdict(plan), "rounds": rounds}
    runs = []
    with timing_alone(), tempfile.TemporaryDirectory(prefix="compressor-processes-") as scratch:
        job_path = Path(scratch) / "job.json"
        job_path.write_text(json.dumps(job))
        for _ in range(processes):
            done = subprocess.run([sys.executable, "-m", "compressor.measure.processes", str(job_path)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeFailure(f"a fresh timing process failed: {reason}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {pair: merge([run["timings"][key] for run in runs], [run["machine_reference_ms"] for run in runs])
            for key, pair in keys.items()}


def merge(per_process: list[dict[str, Any]], references: list[float]) -> dict[str, Any]:
    """One model's statistics from its per-process timings: pooled samples, median of the process medians."""
    samples = [s for stats in per_process for s in stats["samples_ms"]]
    medians = [stats["median_ms"] for stats in per_process]
    loads = [stats["load"] for stats in per_process]
    under = [load.get("under_load") for load in loads]
    load = {"checked": all(load.get("checked") for load in loads),
            "under_load": True if any(under) else (None if None in under else False),
            "other_cores": max((load.get("other_cores", 0.0) for load in loads), default=0.0),
            "per_process": loads}
    return {**per_process[0], **summarize(samples), "median_ms": float(np.median(medians)),
            "samples_ms": [round(s, 5) for s in samples], "load": load, "processes": len(per_process),
            "process_medians_ms": medians, "process_spread": spread(medians),
            "machine_reference_ms": [round(r, 5) for r in references]}


def spread(values: list[float]) -> float:
    """(max - min) / median of per-process medians: how far apart fresh processes land."""
    middle = float(np.median(values))
    return float((max(values) - min(values)) / middle) if middle else 0.0


def speedup(reference: dict[str, Any], compressed: dict[str, Any]) -> float:
    """`reference` median / `compressed` median; when both were timed in the same fresh processes, the median of
    the per-process ratios (the comparison that repeats: each process timed both, interleaved)."""
    base, new = reference.get("process_medians_ms"), compressed.get("process_medians_ms")
    if base and new and len(base) == len(new):
        return float(np.median([b / n for b, n in zip(base, new)]))
    return reference["median_ms"] / compressed["median_ms"]


def main(argv: list[str]) -> None:
    """Child entry point: time the job file's models and print the result as one JSON line."""
    print(json.dumps(child(json.loads(Path(argv[0]).read_text()))))


if __name__ == "__main__":
    main(sys.argv[1:])
