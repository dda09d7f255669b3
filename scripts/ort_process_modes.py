"""ONNX Runtime batch-1 latency of one dense model in many fresh processes: is the per-process median stable?

Each process builds nothing: it times the same exported ONNX file as the harness does
(`compressor.measure.latency.onnxruntime_latency`: its session settings, `--warmups` untimed runs, then `--calls`
timed ones) and prints the median. `--configs` names the session configurations to compare: a thread count
(`2`: the harness's default, spinning intra-op threads), optionally with `-nospin` (no spinning) or `-pinned`
(this process and ORT's intra-op threads pinned to one core each). The configurations take turns slot by slot
(A B C A B C ...), so a slow stretch of the machine hits them all alike; every process also times a fixed
single-thread matrix product (`reference_ms`), which moves with the machine and not with the session.
Run alone on a quiet machine (`.venv/bin/python scripts/ort_process_modes.py -o FILE.json`); a job beside it
changes the answer. The JSON holds every process's median, start time and reference per configuration, and the
environment (CPU, flags, versions, commit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUFFIXES = ("", "-nospin", "-pinned")


def parse_config(config: str) -> tuple[int, bool, bool]:
    """`2`, `2-nospin`, `2-pinned` -> (threads, allow_spinning, pinned)."""
    count, _, suffix = config.partition("-")
    if not count.isdigit() or int(count) < 1 or ("-" + suffix if suffix else "") not in SUFFIXES:
        raise SystemExit(f"unknown config {config!r}; use a thread count with an optional suffix: "
                         f"{', '.join('2' + s for s in SUFFIXES)}")
    return int(count), suffix != "nospin", suffix == "pinned"


def child(onnx_path: str, in_channels: int, input_size: int, config: str, warmups: int, calls: int) -> dict:
    """This process's median milliseconds over exactly `calls` runs after `warmups` untimed ones, with `config`'s
    session (the harness's `onnxruntime_latency` when the config is a bare thread count), plus the reference."""
    import numpy as np

    from compressor.measure.latency import TimingPlan, onnxruntime_latency, onnxruntime_session, sample_latencies
    from compressor.measure.processes import machine_reference_ms

    threads, spinning, pinned = parse_config(config)
    plan = TimingPlan(warmup_runs=warmups, warmup_seconds=0.0, min_runs=calls, min_seconds=0.0, max_runs=calls)
    before = machine_reference_ms()
    if spinning and not pinned:
        median = onnxruntime_latency(onnx_path, in_channels, input_size, threads=threads, plan=plan)["median_ms"]
    else:
        cores = sorted(os.sched_getaffinity(0))
        if pinned:
            os.sched_setaffinity(0, {cores[0]})
        session = onnxruntime_session(onnx_path, threads, allow_spinning=spinning,
                                      thread_affinities=[cores[(i + 1) % len(cores)] + 1 for i in range(threads - 1)]
                                      if pinned else None)
        feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(
            (1, in_channels, input_size, input_size), dtype=np.float32)}
        median = float(np.median(sample_latencies(lambda: session.run(None, feed), plan)))
    return {"median_ms": median, "reference_ms": round((before + machine_reference_ms()) / 2, 5)}


def paired_child(dense_path: str, pruned_path: str, in_channels: int, input_size: int, threads: int,
                 warmups: int, calls: int, rounds: int = 4) -> dict:
    """Both models timed in this process by the harness, interleaved in `rounds` (as a `run` cell times its
    baseline and result): their medians and the speed-up, which is what a report compares."""
    from compressor.measure.latency import TimingPlan, onnxruntime_runner, time_runners
    from compressor.measure.processes import machine_reference_ms

    plan = TimingPlan(warmup_runs=warmups, warmup_seconds=0.0, min_runs=calls, min_seconds=0.0, max_runs=calls)
    runners = {name: onnxruntime_runner(path, in_channels, input_size, 1, threads)
               for name, path in (("dense", dense_path), ("pruned", pruned_path))}
    before = machine_reference_ms()
    stats = time_runners(runners, batch_size=1, input_size=input_size, threads=threads, plan=plan, rounds=rounds)
    dense, pruned = stats["dense"]["median_ms"], stats["pruned"]["median_ms"]
    return {"median_ms": dense, "pruned_median_ms": pruned, "speedup": dense / pruned,
            "reference_ms": round((before + machine_reference_ms()) / 2, 5)}


def harness_check(dense_path: Path, pruned_path: Path, in_channels: int, input_size: int, threads: int,
                  warmups: int, calls: int, processes: int, measurements: int = 2) -> list[dict]:
    """The harness itself (`latency_block` with `MeasureConfig.processes`), run `measurements` times back to back
    on the dense and pruned files: does its median, and its speed-up, repeat?"""
    from torch import nn

    from compressor.measure import MeasureConfig, TimingPlan
    from compressor.measure.harness import latency_block
    from compressor.measure.processes import speedup

    plan = TimingPlan(warmup_runs=warmups, warmup_seconds=0.0, min_runs=calls, min_seconds=0.0, max_runs=calls)
    config = MeasureConfig(backends=("onnxruntime",), threads=threads, plan=plan, processes=processes)
    results = []
    for _ in range(measurements):
        timed = latency_block({"dense": (nn.Identity(), dense_path, None), "pruned": (nn.Identity(), pruned_path,
                                                                                      None)},
                              in_channels, input_size, config)
        dense, pruned = timed["dense"]["onnxruntime"], timed["pruned"]["onnxruntime"]
        results.append({"dense_median_ms": dense["median_ms"], "pruned_median_ms": pruned["median_ms"],
                        "speedup": speedup(dense, pruned), "dense_process_medians_ms": dense["process_medians_ms"],
                        "pruned_process_medians_ms": pruned["process_medians_ms"],
                        "machine_reference_ms": dense["machine_reference_ms"]})
    return results


def export(arch: str, in_channels: int, input_size: int, path: Path, channels: float = 0.0) -> None:
    """The dense model, random weights (a dense model's latency does not depend on them), exported to ONNX; with
    `channels` > 0, that fraction of its channels removed first (one-shot `channels`)."""
    import torch

    from compressor.api import compress
    from compressor.measure.export import export_onnx
    from compressor.models.zoo import build_model

    torch.manual_seed(0)
    model = build_model(arch, 10, in_channels).eval()
    if channels:
        model = compress(model, "channels", amount=channels,
                         example_input=torch.randn(1, in_channels, input_size, input_size)).model.eval()
    export_onnx(model, path, in_channels, input_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="densenet201")
    parser.add_argument("--in-channels", type=int, default=1)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--configs", "--threads", dest="configs", default="1,2",
                        help="comma-separated session configurations: a thread count, optionally -nospin or -pinned")
    parser.add_argument("--processes", type=int, default=12, help="fresh processes per configuration")
    parser.add_argument("--warmups", type=int, default=20)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--pair-channels", type=float, default=0.0,
                        help="also time a copy with this fraction of channels removed beside the dense model in "
                             "each process (interleaved), and record the speed-up (bare thread counts only)")
    parser.add_argument("--harness-processes", type=int, default=0,
                        help="with --pair-channels: then measure dense and pruned twice with the harness, each time "
                             "in this many fresh processes (compressor run/bench --processes), and compare")
    parser.add_argument("-o", "--output", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-pruned", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configs = args.configs.split(",")
    for config in configs:
        parse_config(config)
    if args.child and args.child_pruned:
        threads = parse_config(configs[0])[0]
        print(json.dumps(paired_child(args.child, args.child_pruned, args.in_channels, args.input_size, threads,
                                      args.warmups, args.calls)))
        return
    if args.child:
        print(json.dumps(child(args.child, args.in_channels, args.input_size, configs[0], args.warmups, args.calls)))
        return
    from compressor.measure.processes import spread

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "model.onnx"
        export(args.arch, args.in_channels, args.input_size, onnx_path)
        pair = []
        if args.pair_channels:
            if any(parse_config(c)[1:] != (True, False) for c in configs):
                raise SystemExit("--pair-channels times the harness's session: give bare thread counts")
            export(args.arch, args.in_channels, args.input_size, Path(tmp) / "pruned.onnx", args.pair_channels)
            pair = ["--child-pruned", str(Path(tmp) / "pruned.onnx")]
        medians: dict[str, list[float]] = {c: [] for c in configs}
        processes: dict[str, list[dict]] = {c: [] for c in configs}
        start = time.monotonic()
        for _ in range(args.processes):
            for config in configs:
                began = round(time.monotonic() - start, 2)
                out = subprocess.run([sys.executable, __file__, "--child", str(onnx_path), "--configs", config,
                                      "--in-channels", str(args.in_channels), "--input-size", str(args.input_size),
                                      "--warmups", str(args.warmups), "--calls", str(args.calls), *pair],
                                     check=True, capture_output=True, text=True).stdout
                record = json.loads(out.strip().splitlines()[-1])
                medians[config].append(round(record["median_ms"], 3))
                processes[config].append({"started_s": began, **record})
        harness = []
        if args.pair_channels and args.harness_processes:
            harness = harness_check(onnx_path, Path(tmp) / "pruned.onnx", args.in_channels, args.input_size,
                                    parse_config(configs[-1])[0], args.warmups, args.calls, args.harness_processes)
            for i, result in enumerate(harness):
                print(f"harness measurement {i + 1} ({args.harness_processes} processes, {configs[-1]} threads): "
                      f"dense {result['dense_median_ms']:.3f} ms, pruned {result['pruned_median_ms']:.3f} ms, "
                      f"speed-up {result['speedup']:.4f}", flush=True)
        for config in configs:
            print(f"{config}: per-process medians {medians[config]} ms, spread {spread(medians[config]):.1%}",
                  flush=True)
            if args.pair_channels:
                speedups = [round(p["speedup"], 4) for p in processes[config]]
                print(f"{config}: per-process speed-ups of channels {args.pair_channels} {speedups}, spread "
                      f"{spread(speedups):.1%}", flush=True)
    if args.output:
        from compressor._util.environment import environment
        from compressor._util.fileio import write_json_atomic

        write_json_atomic({"script": "scripts/ort_process_modes.py", "arch": args.arch,
                           "in_channels": args.in_channels, "input_size": args.input_size, "batch_size": 1,
                           "warmups": args.warmups, "calls": args.calls, "statistic": "median per process",
                           "order": "configurations interleaved slot by slot", "medians_ms": medians,
                           "pair_channels": args.pair_channels or None, "harness_check": harness,
                           "processes": processes, "environment": environment()}, args.output)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
