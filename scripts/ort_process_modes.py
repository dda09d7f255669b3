"""ONNX Runtime batch-1 latency of one dense model in many fresh processes: is the per-process median stable?

Each process builds nothing: it opens the same exported ONNX file with the harness's session settings
(`compressor.measure.latency.onnxruntime_session`), warms up, times `--calls` runs and prints its median. Run alone
on a quiet machine (`.venv/bin/python scripts/ort_process_modes.py -o FILE.json`); a job beside it changes the answer.
The JSON holds every process's median per thread count and the environment (CPU, flags, versions, commit).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def child(onnx_path: str, threads: int, warmups: int, calls: int) -> float:
    """Median milliseconds of `calls` runs in this process, after `warmups` untimed ones."""
    from compressor.measure.latency import onnxruntime_session

    session = onnxruntime_session(onnx_path, threads)
    meta = session.get_inputs()[0]
    shape = tuple(dim if isinstance(dim, int) else 1 for dim in meta.shape)  # the dynamic batch axis: 1
    feed = {meta.name: np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
    for _ in range(warmups):
        session.run(None, feed)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def export(arch: str, in_channels: int, input_size: int, path: Path) -> None:
    """The dense model, random weights (a dense model's latency does not depend on them), exported to ONNX."""
    from compressor.export import export_onnx
    from compressor.models import build_model

    export_onnx(build_model(arch, 10, in_channels).eval(), path, in_channels, input_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="densenet201")
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    parser.add_argument("--processes", type=int, default=12, help="fresh processes per thread count")
    parser.add_argument("--warmups", type=int, default=20)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("-o", "--output", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.child:
        print(child(args.child, threads[0], args.warmups, args.calls))
        return
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export(args.arch, args.in_channels, args.input_size, onnx_path)
        medians: dict[str, list[float]] = {}
        for count in threads:
            medians[str(count)] = []
            for _ in range(args.processes):
                out = subprocess.run([sys.executable, __file__, "--child", str(onnx_path), "--threads", str(count),
                                      "--warmups", str(args.warmups), "--calls", str(args.calls)],
                                     check=True, capture_output=True, text=True).stdout
                medians[str(count)].append(round(float(out.strip().splitlines()[-1]), 3))
            print(f"{count} thread(s): per-process medians {medians[str(count)]} ms", flush=True)
    if args.output:
        from compressor.environment import environment
        from compressor.fileio import write_json_atomic

        write_json_atomic({"script": "scripts/ort_process_modes.py", "arch": args.arch,
                           "in_channels": args.in_channels, "input_size": args.input_size, "batch_size": 1,
                           "warmups": args.warmups, "calls": args.calls, "statistic": "median per process",
                           "medians_ms": medians, "environment": environment()}, args.output)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
