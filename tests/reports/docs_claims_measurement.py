"""Claims from reports/deploy-224px/ (scripts/deploy_224px.py), reports/bench/ and reports/benchmarks/."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable
from typing import Any

from docs_claims_common import WORDS, _mb, _one, _pct
from test_committed_reports import Load


def _model(load: Load, name: str) -> dict[str, Any]:
    return load("results.json")["models"][name]


def _speed(model: dict[str, Any], backend: str = "onnxruntime", batch: int = 1) -> dict[str, Any]:
    return _one([s for s in model["speedups"] if (s["backend"], s["batch_size"], s["input_size"]) ==
                 (backend, batch, 224)], f"{backend} speed-up at batch {batch}")


def _deploy_row(name: str, title: str, mac: str, speed: str | None, int8: str | None) -> Callable[[Load], str]:
    """A row of docs/harness.md's 224 px table: `title` may hold {distilled}; `mac`, `speed` and `int8` are the
    formats of the MAC reduction and the speed-ups (None: the cell prints none, or `-` when there is no int8 file)."""
    def wording(load: Load) -> str:
        plain = _model(load, f"plain/{name}")
        distilled = _model(load, f"distilled/{name}")
        fp32 = _speed(plain)
        cell = f"{fp32['compressed_ms']:.2f} ms" + (f" (×{fp32['speedup']:{speed}})" if speed else "")
        if int8 is None:
            int8_cell = "-"
        else:
            q = _speed(plain, "onnxruntime-int8")
            int8_cell = f"{q['compressed_ms']:.2f} ms (×{q['speedup']:{int8}})"
        return (f"| {title.format(distilled=_pct(distilled['accuracy']))} | {_pct(plain['accuracy'])} % | "
                f"×{fp32['mac_reduction']:{mac}} | {cell} | {int8_cell} |")
    return wording


def _deploy_dense_row(load: Load) -> str:
    dense = _model(load, "dense")
    fp32, int8 = _speed(dense), _speed(dense, "onnxruntime-int8")
    return (f"| dense | {_pct(dense['accuracy'])} % (int8 {_pct(dense['int8']['accuracy'])} %) | ×1 | "
            f"{fp32['compressed_ms']:.2f} ms | {int8['compressed_ms']:.2f} ms (×{int8['speedup']:.2f}) |")


def _deploy_setup(load: Load) -> str:
    results = load("results.json")
    dense = _model(load, "dense")
    env = results["environment"]
    isa = {"avx512_vnni": "VNNI", "avx512_bf16": "BF16"}
    amx = "(no AMX)" if not any(i.startswith("amx") for i in env["isa"]) else "(AMX)"
    features = "/".join(name for key, name in isa.items() if key in env["isa"])
    macs = dense["grid"]["macs"][str(results["deploy_size"])]
    return (f"{results['threads']} threads, {env['cpu']} with AVX-512 {features} {amx}. At {results['deploy_size']} px "
            f"the s1 stem\nmakes the dense model {macs / 1e9:.2f} GMACs, {_speed(dense)['compressed_ms']:.1f} ms under "
            "ONNX Runtime at batch 1")


def _deploy_minutes(load: Load) -> str:
    elapsed = [int(line.split()[1]) for line in load("process-samples.log").splitlines()
               if line.rstrip().endswith("scripts/deploy_224px.py")]
    return f"samples its process up to {max(elapsed)} s elapsed"


def _kernels(load: Load) -> dict[str, Any]:
    return _model(load, "dense")["grid"]["int8_kernels"][str(load("results.json")["deploy_size"])]


def _int8_graph(load: Load) -> str:
    kernels = _kernels(load)
    ops = kernels["int8_compute_ops"]
    if set(ops) != {"QLinearConv", "QLinearAdd", "QLinearGlobalAveragePool", "QGemm"} or kernels["float_compute_ops"]:
        return f"integer kernels {ops}, float kernels {kernels['float_compute_ops']}"
    return (f"graph runs {ops['QLinearConv']} QLinearConv, {ops['QLinearAdd']} QLinearAdd, QLinearGlobalAveragePool "
            f"and QGemm, no float convolution, with {100 * kernels['profile_int8_share']:.1f} % of the profiled time "
            "in integer kernels")


def _int8_pays(load: Load) -> str:
    dense, kernels = _model(load, "dense"), _kernels(load)
    ops = kernels["int8_compute_ops"]
    b1, b8 = _speed(dense, "onnxruntime-int8"), _speed(dense, "onnxruntime-int8", 8)
    only = "only integer kernels" if not kernels["float_compute_ops"] else "float kernels too"
    return (f"the dense model's int8 graph runs {only} ({ops['QLinearConv']} QLinearConv, {ops['QLinearAdd']} "
            f"QLinearAdd,\nQGemm; {100 * kernels['profile_int8_share']:.1f} % of the profiled time in them) and is "
            f"×{b1['speedup']:.2f} faster than fp32 at batch 1, ×{b8['speedup']:.2f} at batch 8, at\n"
            f"{_pct(dense['int8']['accuracy'])} % vs {_pct(dense['accuracy'])} %")


def _tiny_int8(load: Load) -> str:
    model = _model(load, "plain/channels+int8-0.9")
    fp32, int8 = _speed(model), _speed(model, "onnxruntime-int8")
    slower = "slower" if int8["compressed_ms"] > fp32["compressed_ms"] else "faster"
    macs = model["grid"]["macs"]["224"] / 1e9
    return (f"at {macs:.2f} GMACs (channels 0.9) int8 is {slower} than fp32 ({int8['compressed_ms']:.2f}\nvs "
            f"{fp32['compressed_ms']:.2f} ms)")


def _tracks_macs(load: Load) -> str:
    structured = {name: _speed(m) for name, m in load("results.json")["models"].items()
                  if name.startswith("plain/") and ("channels" in m["pipeline"] or "blocks" in m["pipeline"])}
    ratios = {name: s["speedup"] / s["mac_reduction"] for name, s in structured.items()}
    near = [r for name, r in ratios.items() if "blocks" in name or name == "plain/channels-0.5"]
    met = sum(r >= 0.55 for r in ratios.values())
    c9 = structured["plain/channels-0.9"]
    return (f"for structured pruning up to ×{structured['plain/channels-0.7']['mac_reduction']:.0f}: channels 0.5 "
            f"and blocks give {min(near):.2f}-{max(near):.2f} of their MAC\nreduction, channels 0.7 "
            f"{ratios['plain/channels-0.7']:.2f} (target ≥ 0.55: **met** for those {WORDS[met]}); channels 0.9 gets "
            f"×{c9['speedup']:.0f} for ×{c9['mac_reduction']:.0f} fewer\nMACs ({ratios['plain/channels-0.9']:.2f}, "
            f"**not met**: at {_model(load, 'plain/channels-0.9')['grid']['macs']['224'] / 1e6:.0f} MMACs per call")


def _round_to(load: Load) -> str:
    def fast(name: str) -> str:
        return f"×{_speed(_model(load, f'round/{name}'))['speedup']:.2f}"

    def removed(name: str) -> str:
        return f"{100 * _model(load, f'round/{name}')['channel_ratio_removed']:.1f}"
    return (f"one-shot `channels` 0.7 on the same baseline is {fast('channels-0.7-r1')} unrounded, "
            f"{fast('channels-0.7-r8')} with\n`round_to` 8 and {fast('channels-0.7-r16')} with 16 (which also removes "
            f"{removed('channels-0.7-r8')} / {removed('channels-0.7-r16')} % instead of {removed('channels-0.7-r1')} % "
            f"of the channels); global 0.5:\n{fast('channels-0.5-global-r1')}, {fast('channels-0.5-global-r8')}, "
            f"{fast('channels-0.5-global-r16')}")


RUN_224 = "runs/channels-r16+int8-0.5-ft2-distill.json"


def _run_speed(run: dict[str, Any], threads: int, batch: int = 1) -> float:
    return _one([s["speedup"] for s in run["deployment"]["speedups"] if (s["input_size"], s["batch_size"],
                 s["threads"], s["backend"]) == (run["deployment"]["deploy_size"], batch, threads, "onnxruntime-int8")],
                f"int8 speed-up at {threads} threads, batch {batch}")


def _eight_times(load: Load) -> str:
    run = load(RUN_224)
    p, n = run["compressed"]["accuracy"], run["dataset"]["samples"]
    threads = run["environment"]["cpu_count"]
    plain5, plain7 = _model(load, "plain/channels-0.5"), _model(load, "plain/channels-0.7")
    down = sorted(100 * (_model(load, "dense")["accuracy"] - _model(load, f"{m}/channels-0.7")["accuracy"])
                  for m in ("plain", "distilled"))
    return (f"{_pct(p)} % int8 (dense {_pct(run['baseline']['accuracy'])}\n%, one seed; binomial SE "
            f"{100 * math.sqrt(p * (1 - p) / n):.2f} points), ×{_run_speed(run, threads):.2f} faster than dense fp32 "
            f"ONNX Runtime at {run['deployment']['deploy_size']} px, batch 1, {threads} threads\n"
            f"(×{_run_speed(run, 1):.2f} on 1 thread, ×{_run_speed(run, threads, 8):.2f} at batch 8), "
            f"{_mb(run['compressed']['deployable_bytes'])} MB deployable. Without int8 none of the recovery models "
            f"gets there\n(channels 0.5: ×{_speed(plain5)['speedup']:.2f}; channels 0.7: "
            f"×{_speed(plain7)['speedup']:.2f} but {down[0]:.1f}-{down[1]:.1f} points down)")


def _readme_224(load: Load) -> str:
    run = load(RUN_224)
    params = run["params"]["channels"]
    threads = run["environment"]["cpu_count"]
    return (f"Channels {params['amount']:g}\n(`round_to` {params['round_to']}) + int8 after "
            f"{run['recovery']['finetune_epochs']:g} {'distilled' if run['recovery']['distill'] else 'plain'} epochs: "
            f"{_pct(run['compressed']['accuracy'])} % (dense {_pct(run['baseline']['accuracy'])} %), "
            f"×{_run_speed(run, threads):.2f} faster than dense fp32 ONNX Runtime\nat "
            f"{run['deployment']['deploy_size']} px")


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
