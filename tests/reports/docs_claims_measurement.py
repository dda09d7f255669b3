"""Claims from reports/bench/ and reports/benchmarks/."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from typing import Any

from docs_claims_common import _mb, _one
from test_committed_reports import Load


def _bench_row(stem: str, title: str) -> Callable[[Load], str]:
    def wording(load: Load) -> str:
        m = load(f"{stem}.json")["measurements"]
        variants = {v["variant"]: v["bytes"] for v in m["size"]["variants"]}
        torch, ort = m["latency"]["torch"], m["latency"]["onnxruntime"]
        return (f"| {title} | {m['params_total'] / 1e6:.2f} M | {m['macs'] / 1e9:.3f} G | {_mb(m['size_bytes'])} MB | "
                f"{_mb(m['deployable_bytes'])} MB | {_mb(variants['onnx'])} MB | "
                f"{torch['median_ms']:.2f} / {torch['p90_ms']:.2f} / {torch['p99_ms']:.2f} ms | "
                f"{ort['median_ms']:.2f} / {ort['p90_ms']:.2f} / {ort['p99_ms']:.2f} ms | "
                f"{100 * torch['repeat_spread']:.2f} %, {100 * ort['repeat_spread']:.2f} % |")
    return wording


def _bench_deployable(load: Load) -> str:
    kinds = {load(f"{stem}.json")["measurements"]["size"]["deployable"] for stem in BENCH}
    return f"deployable ({_one(sorted(kinds), 'deployable variant').replace('fp32+xz', 'fp32 + xz')})"


BENCH = ("resnet18-224px", "densenet201-224px")


def _bench_spread(load: Load) -> str:
    spreads = [100 * load(f"{stem}.json")["measurements"]["latency"][b]["repeat_spread"]
               for stem in BENCH for b in ("torch", "onnxruntime")]
    return f"agreed within {min(spreads):.1f}–{max(spreads):.1f} % here"


def _bench_setup(load: Load) -> str:
    runs = [load(f"{stem}.json") for stem in BENCH]
    env = _one(sorted({json.dumps(r["environment"], sort_keys=True) for r in runs}), "environment")
    env = json.loads(env)
    model = _one(sorted({(r["model"]["in_channels"], r["model"]["num_classes"]) for r in runs}), "model shape")
    batch = _one(sorted({r["measurements"]["measure_config"]["batch_size"] for r in runs}), "batch size")
    cpu = re.sub(r"\((R|TM)\)|Processor", "", env["cpu"]).split()
    return (f"Freshly built ImageNet-shaped models ({model[0]} channels, {model[1]:,} classes; random weights do not "
            f"change the latency of a\ndense model), batch {batch}, {env['torch_threads']} threads, {' '.join(cpu)} "
            f"({env['cpu_count']} cores), torch {env['packages']['torch']}, ONNX Runtime "
            f"{env['packages']['onnxruntime']}")


BENCH_FILE = "Linux-CPython-3.11-64bit/0002_a5ae774dcffeeb6959c8c9f805a3e9886369ee1b_20261126_122832.json"


def _medians(load: Load) -> dict[tuple[str, int, str, int], float]:
    out = {}
    for b in load(BENCH_FILE)["benchmarks"]:
        m = re.fullmatch(r"test_forward_latency\[resnet18-(\d+)px-(.+)-(torch|onnxruntime)-bs(\d+)\]", b["name"])
        if m:
            out[m[2], int(m[1]), m[3], int(m[4])] = 1000 * b["stats"]["median"]
    return out


def _suite_row(variant: str, title: str) -> Callable[[Load], str]:
    def wording(load: Load) -> str:
        medians = _medians(load)

        def cell(size: int, batch: int) -> str:
            ort = f"{medians[variant, size, 'onnxruntime', batch]:.2f}"
            torch = medians.get((variant, size, "torch", batch))
            return ort if torch is None else f"{torch:.2f} / {ort}"
        return f"| {title} | {cell(32, 1)} | {cell(224, 1)} | {cell(224, 8)} |"
    return wording


def _suite_int8(load: Load) -> str:
    m = _medians(load)
    return (f"At 32 px int8 is slower than fp32 ({m['int8', 32, 'onnxruntime', 1]:.2f} vs "
            f"{m['dense', 32, 'onnxruntime', 1]:.2f} ms); at 224 px it is "
            f"×{m['dense', 224, 'onnxruntime', 1] / m['int8', 224, 'onnxruntime', 1]:.2f} faster at batch 1 and "
            f"×{m['dense', 224, 'onnxruntime', 8] / m['int8', 224, 'onnxruntime', 8]:.2f} at batch 8")


def _bench_steps(load: Load, strategy: str) -> list[dict[str, Any]]:
    """Every `strategy` step of the variants of the committed `make bench` run."""
    return [s for b in load(BENCH_FILE)["benchmarks"] for s in b["extra_info"].get("steps", [])
            if s["strategy"] == strategy]


def _suite_setup(load: Load) -> str:
    data = load(BENCH_FILE)
    cpu = data["machine_info"]["cpu"]
    round_to = _one(sorted({s["params"]["round_to"] for s in _bench_steps(load, "channels")}), "round_to")
    return (f"One `make bench` on this machine ({cpu['brand_raw']}, {cpu['count']} cores, AVX-512 VNNI; "
            "`reports/benchmarks/Linux-CPython-3.11-64bit/0002_a5ae774…json`), medians in ms, torch / ONNX Runtime "
            "(int8 and\nchain: ONNX Runtime only); the digits ResNet18 trained at 32 px, variants one-shot (channels "
            f"with the default\n`round_to` {round_to}):")


def _suite_rounds(load: Load) -> str:
    rounds = _one(sorted({b["stats"]["rounds"] for b in load(BENCH_FILE)["benchmarks"]
                          if "forward_latency" in b["name"]}), "timed rounds")
    return f"{rounds} timed single calls"


def _supcon_loss(load: Load) -> str:
    medians = {(b["params"]["implementation"], b["params"]["rows"]): 1000 * b["stats"]["median"]
               for b in load("supcon-loss.json")["benchmarks"]}
    info = _one(sorted({json.dumps({k: v for k, v in b["extra_info"].items() if k != "rows"}, sort_keys=True)
                        for b in load("supcon-loss.json")["benchmarks"]}), "settings")
    rounds = _one(sorted({b["stats"]["rounds"] for b in load("supcon-loss.json")["benchmarks"]}), "rounds")
    return (f"(forward + backward, {json.loads(info)['dim']}-d, 10 classes, {rounds} rounds,\n"
            f"`reports/benchmarks/supcon-loss.json`) measured medians of {medians['supcon', 1024]:.1f} ms vs "
            f"pytorch-metric-learning's {medians['pytorch-metric-learning', 1024]:.1f} ms at 1,024\nrows and "
            f"{medians['supcon', 2048]:.1f} vs {medians['pytorch-metric-learning', 2048]:.1f} ms at 2,048 rows")


CONFIG_WORDS = {"2": "2 threads", "2-nospin": "no spinning", "2-pinned": "pinned", "1": "1 thread"}


def _session_configs(load: Load) -> str:
    """reports/latency-processes/session-configs.json: how far fresh-process medians spread, per session config."""
    report = load("session-configs.json")
    env = report["environment"]
    spreads = ", ".join(f"{100 * (max(m) - min(m)) / statistics.median(m):.0f} % ({CONFIG_WORDS[c]})"
                        for c, m in report["medians_ms"].items())
    counts = _one(sorted({len(m) for m in report["medians_ms"].values()}), "processes per config")
    return (f"on the {env['cpu_count']}-core {env['cpu']}, {counts} fresh processes per session configuration timing "
            f"one dense {report['arch']} ONNX file ({report['in_channels']} channels, {report['input_size']} px, batch "
            f"{report['batch_size']}) spread (max − min ÷ median) {spreads}")


def _reference_correlation(load: Load) -> str:
    """The correlation of each process's median with its machine reference, lowest and highest over configs."""
    report = load("session-configs.json")
    import numpy as np

    corr = [float(np.corrcoef([p["median_ms"] for p in ps], [p["reference_ms"] for p in ps])[0, 1])
            for ps in report["processes"].values()]
    refs = [p["reference_ms"] for ps in report["processes"].values() for p in ps]
    return (f"a fixed single-thread matrix product timed in the same processes ranged {min(refs):.3f}-"
            f"{max(refs):.3f} ms and correlates with the model's median (r = {min(corr):.2f}-{max(corr):.2f})")


def _pair_speedups(load: Load) -> str:
    """reports/latency-processes/pairs.json: per-process speed-ups of channels 0.5, and the harness measured twice."""
    report = load("pairs.json")
    two = report["processes"]["2"]
    dense = [p["median_ms"] for p in two]
    speed = [p["speedup"] for p in two]
    first, second = report["harness_check"]
    k = len(first["dense_process_medians_ms"])
    return (f"dense medians of {min(dense):.1f}-{max(dense):.1f} ms in {len(two)} processes (2 threads), while the "
            f"speed-up of channels {report['pair_channels']:g} timed beside it stayed at ×{min(speed):.2f}-"
            f"{max(speed):.2f}, median ×{statistics.median(speed):.2f}. Measured twice with `--processes {k}`, "
            f"the harness gave dense medians of {first['dense_median_ms']:.2f} and {second['dense_median_ms']:.2f} ms "
            f"and speed-ups of ×{first['speedup']:.2f} and ×{second['speedup']:.2f}")
