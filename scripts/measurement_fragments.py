"""The fragments of the measurement reports that docs/harness.md, docs/strategies.md and docs/supcon.md include, so no
latency figure of them is copied by hand: reports/bench/ (`compressor bench` at 224 px), reports/benchmarks/ (the
committed `make bench` run and the SupCon loss suite) and reports/latency-processes/ (fresh-process spread, and the
two modes of fresh DenseNet201 processes).

    .venv/bin/python scripts/measurement_fragments.py reports/bench reports/benchmarks reports/latency-processes

`render_fragments(report)` returns a report directory's fragments, by its name (tests/reports/test_fragments.py
compares them with the committed files).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compressor.report.numbers import megabytes, the_one

BENCH = (("resnet18-224px", "ResNet18"), ("densenet201-224px", "DenseNet201"))
BENCH_FILE = "Linux-CPython-3.11-64bit/0002_a5ae774dcffeeb6959c8c9f805a3e9886369ee1b_20261126_122832.json"
SUITE_ROWS = (("dense", "dense"), ("l1-0.5", "l1-0.5"), ("channels-0.5", "channels-0.5"),
              ("channels-0.7", "channels-0.7"), ("blocks-0.5", "blocks-0.5"), ("int8", "int8"),
              ("chain", "chain (blocks → l1 → int8)"))
CONFIG_WORDS = {"2": "2 threads", "2-nospin": "no spinning", "2-pinned": "pinned", "1": "1 thread"}


def _json(root: Path, name: str) -> Any:
    return json.loads((root / name).read_text())


def bench(root: Path) -> dict[str, str]:
    """reports/bench/: the setup sentence, the table and the back-to-back spread."""
    runs = {stem: _json(root, f"{stem}.json") for stem, _ in BENCH}
    env = json.loads(the_one(sorted({json.dumps(r["environment"], sort_keys=True) for r in runs.values()}),
                             "environment"))
    channels, classes = the_one(sorted({(r["model"]["in_channels"], r["model"]["num_classes"])
                                        for r in runs.values()}), "model shape")
    batch = the_one(sorted({r["measurements"]["measure_config"]["batch_size"] for r in runs.values()}), "batch size")
    deployable = the_one(sorted({r["measurements"]["size"]["deployable"] for r in runs.values()}), "deployable")
    cpu = " ".join(re.sub(r"\((R|TM)\)|Processor", "", env["cpu"]).split())
    lines = [f"Freshly built ImageNet-shaped models ({channels} channels, {classes:,} classes; random weights do not "
             f"change the latency of a dense model), batch {batch}, {env['torch_threads']} threads, {cpu} "
             f"({env['cpu_count']} cores), torch {env['packages']['torch']}, ONNX Runtime "
             f"{env['packages']['onnxruntime']}:", "",
             f"| model | params | MACs | fp32 file | deployable ({deployable.replace('fp32+xz', 'fp32 + xz')}) | "
             "ONNX file | torch eager median / p90 / p99 | ONNX Runtime median / p90 / p99 | spread of 2 back-to-back "
             "medians (torch, ORT) |", "|---|---|---|---|---|---|---|---|---|"]
    spreads = []
    for stem, title in BENCH:
        m = runs[stem]["measurements"]
        variants = {v["variant"]: v["bytes"] for v in m["size"]["variants"]}
        torch, ort = m["latency"]["torch"], m["latency"]["onnxruntime"]
        spreads += [100 * torch["repeat_spread"], 100 * ort["repeat_spread"]]
        lines.append(f"| {title} | {m['params_total'] / 1e6:.2f} M | {m['macs'] / 1e9:.3f} G | "
                     f"{megabytes(m['size_bytes'])} MB | {megabytes(m['deployable_bytes'])} MB | "
                     f"{megabytes(variants['onnx'])} MB | "
                     f"{torch['median_ms']:.2f} / {torch['p90_ms']:.2f} / {torch['p99_ms']:.2f} ms | "
                     f"{ort['median_ms']:.2f} / {ort['p90_ms']:.2f} / {ort['p99_ms']:.2f} ms | "
                     f"{100 * torch['repeat_spread']:.2f} %, {100 * ort['repeat_spread']:.2f} % |")
    lines += ["", f"Two back-to-back measurements of one model agreed within {min(spreads):.1f}–{max(spreads):.1f} % "
                  "here (the target is 3 %)."]
    return {"table.md": "\n".join(lines) + "\n"}


def medians_of(data: dict[str, Any]) -> dict[tuple[str, int, str, int], float]:
    out = {}
    for b in data["benchmarks"]:
        m = re.fullmatch(r"test_forward_latency\[resnet18-(\d+)px-(.+)-(torch|onnxruntime)-bs(\d+)\]", b["name"])
        if m:
            out[m[2], int(m[1]), m[3], int(m[4])] = 1000 * b["stats"]["median"]
    return out


def benchmarks(root: Path) -> dict[str, str]:
    """reports/benchmarks/: the committed `make bench` run's table and int8 sentence, and the SupCon loss suite."""
    data = _json(root, BENCH_FILE)
    medians = medians_of(data)
    cpu = data["machine_info"]["cpu"]
    round_to = the_one(sorted({s["params"]["round_to"] for b in data["benchmarks"]
                               for s in b["extra_info"].get("steps", []) if s["strategy"] == "channels"}), "round_to")
    rounds = the_one(sorted({b["stats"]["rounds"] for b in data["benchmarks"] if "forward_latency" in b["name"]}),
                     "timed rounds")

    def cell(variant: str, size: int, batch: int) -> str:
        ort = f"{medians[variant, size, 'onnxruntime', batch]:.2f}"
        torch = medians.get((variant, size, "torch", batch))
        return ort if torch is None else f"{torch:.2f} / {ort}"

    def ratio(size: int, batch: int) -> float:
        return medians["dense", size, "onnxruntime", batch] / medians["int8", size, "onnxruntime", batch]

    int8_32, dense_32 = medians["int8", 32, "onnxruntime", 1], medians["dense", 32, "onnxruntime", 1]
    suite = [f"One `make bench` ({cpu['brand_raw']}, {cpu['count']} cores; `reports/benchmarks/{BENCH_FILE}`), "
             f"{rounds} timed single calls per row, medians in ms, torch / ONNX Runtime (int8 and chain: ONNX "
             "Runtime only); the digits ResNet18 trained at 32 px, variants one-shot (channels with the default "
             f"`round_to` {round_to}):", "", "| variant | 32 px, batch 1 | 224 px, batch 1 | 224 px, batch 8 |",
             "|---|---|---|---|",
             *(f"| {title} | {cell(v, 32, 1)} | {cell(v, 224, 1)} | {cell(v, 224, 8)} |" for v, title in SUITE_ROWS),
             "", f"At 32 px int8 is {'slower' if int8_32 > dense_32 else 'faster'} than fp32 ({int8_32:.2f} vs "
                 f"{dense_32:.2f} ms); at 224 px it is ×{ratio(224, 1):.2f} faster at batch 1 and ×{ratio(224, 8):.2f}"
                 " at batch 8."]
    loss = _json(root, "supcon-loss.json")["benchmarks"]
    loss_medians = {(b["params"]["implementation"], b["params"]["rows"]): 1000 * b["stats"]["median"] for b in loss}
    dim = the_one(sorted({b["extra_info"]["dim"] for b in loss}), "feature dimension")
    loss_rounds = the_one(sorted({b["stats"]["rounds"] for b in loss}), "rounds")
    supcon = (f"`benchmarks/test_supcon_loss.py` (forward + backward, {dim}-d, 10 classes, {loss_rounds} rounds, "
              f"`reports/benchmarks/supcon-loss.json`) measured medians of {loss_medians['supcon', 1024]:.1f} ms vs "
              f"pytorch-metric-learning's {loss_medians['pytorch-metric-learning', 1024]:.1f} ms at 1,024 rows and "
              f"{loss_medians['supcon', 2048]:.1f} vs {loss_medians['pytorch-metric-learning', 2048]:.1f} ms at 2,048 "
              "rows.")
    return {"suite.md": "\n".join(suite) + "\n", "supcon-loss.md": supcon + "\n"}


def latency_processes(root: Path) -> dict[str, str]:
    """reports/latency-processes/: how fresh-process medians spread, and what repeats inside one process."""
    import numpy as np

    configs, pairs = _json(root, "session-configs.json"), _json(root, "pairs.json")
    env = configs["environment"]
    spreads = ", ".join(f"{100 * (max(m) - min(m)) / statistics.median(m):.0f} % ({CONFIG_WORDS[c]})"
                        for c, m in configs["medians_ms"].items())
    counts = the_one(sorted({len(m) for m in configs["medians_ms"].values()}), "processes per config")
    corr = [float(np.corrcoef([p["median_ms"] for p in ps], [p["reference_ms"] for p in ps])[0, 1])
            for ps in configs["processes"].values()]
    refs = [p["reference_ms"] for ps in configs["processes"].values() for p in ps]
    two = pairs["processes"]["2"]
    dense, speed = [p["median_ms"] for p in two], [p["speedup"] for p in two]
    first, second = pairs["harness_check"]
    text = (f"On the {env['cpu_count']}-core {env['cpu']}, {counts} fresh processes per session configuration timing "
            f"one dense {configs['arch']} ONNX file ({configs['in_channels']} channels, {configs['input_size']} px, "
            f"batch {configs['batch_size']}) spread (max − min ÷ median) {spreads}. A fixed single-thread matrix "
            f"product timed in the same processes ranged {min(refs):.3f}-{max(refs):.3f} ms and correlates with the "
            f"model's median (r = {min(corr):.2f}-{max(corr):.2f}). Inside one process, models interleaved: dense "
            f"medians of {min(dense):.1f}-{max(dense):.1f} ms in {len(two)} processes (2 threads), while the speed-up "
            f"of channels {pairs['pair_channels']:g} timed beside it stayed at ×{min(speed):.2f}-{max(speed):.2f}, "
            f"median ×{statistics.median(speed):.2f}. Measured twice with `--processes "
            f"{len(first['dense_process_medians_ms'])}`, the harness gave dense medians of "
            f"{first['dense_median_ms']:.2f} and {second['dense_median_ms']:.2f} ms and speed-ups of "
            f"×{first['speedup']:.2f} and ×{second['speedup']:.2f}.\n")
    return {"spread.md": text, "densenet201-modes.md": _densenet201_modes(_json(root, "densenet201-modes.json"))}


def _two_modes(values: list[float]) -> tuple[str, str]:
    """("A-B ms in N", "C-D ms in M"): the values split at their widest gap, each side as its range and count."""
    ordered = sorted(values)
    split = max(range(1, len(ordered)), key=lambda i: ordered[i] - ordered[i - 1])
    return tuple(f"{side[0]:.2f}-{side[-1]:.2f} ms in {len(side)}"  # type: ignore[return-value]
                 for side in (ordered[:split], ordered[split:]))


def _densenet201_modes(report: dict[str, Any]) -> str:
    """docs/harness.md: fresh processes timing one dense DenseNet201 file fell into two modes with 2 threads."""
    medians, env = report["medians_ms"], report["environment"]
    fast, slow = _two_modes(medians["2"])
    channels = f"{report['in_channels']} channel{'s' if report['in_channels'] > 1 else ''}"
    return (f"On the {env['cpu_count']}-core {env['cpu']}, {len(medians['2'])} fresh processes timing one dense "
            f"{report['arch']} ONNX file ({channels}, {report['input_size']} px, batch {report['batch_size']}) gave "
            f"medians of {fast} processes and {slow} with 2 threads, and {min(medians['1']):.2f}-"
            f"{max(medians['1']):.2f} ms with 1 thread (`.venv/bin/python scripts/ort_process_modes.py --processes "
            f"{len(medians['2'])} -o reports/latency-processes/densenet201-modes.json`, run alone; the JSON holds every"
            " median and the environment).\n")


RENDERERS: dict[str, Callable[[Path], dict[str, str]]] = {"bench": bench, "benchmarks": benchmarks,
                                                          "latency-processes": latency_processes}


def render_fragments(root: Path) -> dict[str, str]:
    """The fragments of one of the measurement report directories (chosen by its name)."""
    return RENDERERS[root.name](root)


def main() -> None:
    from compressor.report.fragments import write_texts

    for name in sys.argv[1:] or [f"reports/{name}" for name in RENDERERS]:
        for path in write_texts(Path(name), render_fragments(Path(name))):
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
