"""ONNX Runtime batch-1 latency of one dense model in many fresh processes: is the per-process median stable?

Each process builds nothing: it times the same exported ONNX file as the harness does
(`compressor.measure.latency.onnxruntime_latency`: its session settings, `--warmups` untimed runs, then `--calls`
timed ones) and prints the median. Run alone on a quiet machine
(`.venv/bin/python scripts/ort_process_modes.py -o FILE.json`); a job beside it changes the answer.
The JSON holds every process's median per thread count and the environment (CPU, flags, versions, commit).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path


def child(onnx_path: str, in_channels: int, input_size: int, threads: int, warmups: int, calls: int) -> float:
    """Median milliseconds of exactly `calls` runs in this process, after `warmups` untimed ones (the harness's
    `onnxruntime_latency`, as a cell times its models)."""
    from compressor.measure.latency import TimingPlan, onnxruntime_latency

    plan = TimingPlan(warmup_runs=warmups, warmup_seconds=0.0, min_runs=calls, min_seconds=0.0, max_runs=calls)
    return onnxruntime_latency(onnx_path, in_channels, input_size, threads=threads, plan=plan)["median_ms"]


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
        print(child(args.child, args.in_channels, args.input_size, threads[0], args.warmups, args.calls))
        return
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export(args.arch, args.in_channels, args.input_size, onnx_path)
        medians: dict[str, list[float]] = {}
        for count in threads:
            medians[str(count)] = []
            for _ in range(args.processes):
                out = subprocess.run([sys.executable, __file__, "--child", str(onnx_path), "--threads", str(count),
                                      "--in-channels", str(args.in_channels), "--input-size", str(args.input_size),
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
