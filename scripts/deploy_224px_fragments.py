"""The fragments of reports/deploy-224px/ that docs/harness.md includes and README.md embeds, so no figure of the
224 px timings is copied by hand: rendered from the report's results.json, its ≥ 8× run report and its process log.

    .venv/bin/python scripts/deploy_224px_fragments.py [reports/deploy-224px]

`render_fragments(report)` returns them (tests/reports/test_fragments.py compares them with the committed files);
scripts/deploy_224px.py writes them after the report. `table.md`: the setup and the batch-1 table; `findings.md`:
what the figures say (int8, MACs, `round_to`, the ≥ 8× run), each with the target it meets or misses;
`headline.md`: the ≥ 8× run in one sentence, beside what int8 alone gives the dense model.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compressor.report.numbers import in_words, met, percent, the_one

RUN_224 = "runs/channels-r16+int8-0.5-ft2-distill.json"
# the table's rows: model name in results.json, its title ({distilled}: the distilled twin's top-1), and the formats
# of its MAC reduction, fp32 speed-up and int8 speed-up (None: not printed, or `-` when there is no int8 file)
ROWS = (("channels-0.5", "channels 0.5, 2 epochs (distilled {distilled} %)", ".2f", ".2f", None),
        ("channels-0.7", "channels 0.7 (distilled {distilled} %)", ".1f", ".2f", None),
        ("blocks-0.5", "blocks 0.5 (distilled {distilled} %)", ".2f", ".2f", None),
        ("blocks+l1+int8-0.95", "blocks → l1 → int8", ".2f", None, ".2f"),
        ("channels+int8-0.9", "channels 0.9 → int8", ".0f", ".1f", ".1f"))
SPEED_PER_MAC_TARGET = 0.55
INT8_SPEEDUP_TARGET, INT8_POINTS_TARGET = 2.5, 0.5


class Report:
    """The files of one deploy-224px report directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results = json.loads((root / "results.json").read_text())
        self.run = json.loads((root / RUN_224).read_text())

    def model(self, name: str) -> dict[str, Any]:
        return self.results["models"][name]

    def speed(self, model: dict[str, Any], backend: str = "onnxruntime", batch: int = 1) -> dict[str, Any]:
        size = self.results["deploy_size"]
        return the_one([s for s in model["speedups"] if (s["backend"], s["batch_size"], s["input_size"]) ==
                     (backend, batch, size)], f"{backend} speed-up at batch {batch}")

    def kernels(self) -> dict[str, Any]:
        return self.model("dense")["grid"]["int8_kernels"][str(self.results["deploy_size"])]

    def run_speed(self, threads: int, batch: int = 1) -> float:
        deployment = self.run["deployment"]
        return the_one([s["speedup"] for s in deployment["speedups"] if (s["input_size"], s["batch_size"], s["threads"],
                     s["backend"]) == (deployment["deploy_size"], batch, threads, "onnxruntime-int8")],
                    f"int8 speed-up at {threads} threads, batch {batch}")


def _row(report: Report, name: str, title: str, mac: str, speed: str | None, int8: str | None) -> str:
    plain, distilled = report.model(f"plain/{name}"), report.model(f"distilled/{name}")
    fp32 = report.speed(plain)
    cell = f"{fp32['compressed_ms']:.2f} ms" + (f" (×{fp32['speedup']:{speed}})" if speed else "")
    int8_cell = "-"
    if int8 is not None:
        q = report.speed(plain, "onnxruntime-int8")
        int8_cell = f"{q['compressed_ms']:.2f} ms (×{q['speedup']:{int8}})"
    return (f"| {title.format(distilled=percent(distilled['accuracy']))} | {percent(plain['accuracy'])} % | "
            f"×{fp32['mac_reduction']:{mac}} | {cell} | {int8_cell} |")


def table(report: Report) -> str:
    results, dense = report.results, report.model("dense")
    env, size = results["environment"], results["deploy_size"]
    isa = [name for key, name in {"avx512_vnni": "VNNI", "avx512_bf16": "BF16"}.items() if key in env["isa"]]
    amx = "AMX" if any(i.startswith("amx") for i in env["isa"]) else "no AMX"
    elapsed = [int(line.split()[1]) for line in (report.root / "process-samples.log").read_text().splitlines()
               if line.rstrip().endswith("scripts/deploy_224px.py")]
    fp32, int8 = report.speed(dense), report.speed(dense, "onnxruntime-int8")
    lines = [f"All in the same interleaved rounds, {results['threads']} threads, {env['cpu']}"
             + (f" with AVX-512 {'/'.join(isa)}" if isa else "") + f" ({amx}); the script's process was sampled up "
             f"to {max(elapsed)} s elapsed (`reports/deploy-224px/process-samples.log`). At {size} px the s1 stem "
             f"makes the dense model {dense['grid']['macs'][str(size)] / 1e9:.2f} GMACs, "
             f"{fp32['compressed_ms']:.1f} ms under ONNX Runtime at batch 1. Medians at batch 1 (×: dense fp32 ONNX "
             "Runtime ÷ this):", "",
             "| model | top-1 at 28 px | MACs ÷ | ONNX Runtime fp32 | int8 |", "|---|---|---|---|---|",
             f"| dense | {percent(dense['accuracy'])} % (int8 {percent(dense['int8']['accuracy'])} %) | ×1 | "
             f"{fp32['compressed_ms']:.2f} ms | {int8['compressed_ms']:.2f} ms (×{int8['speedup']:.2f}) |",
             *(_row(report, *row) for row in ROWS)]
    return "\n".join(lines) + "\n"


def findings(report: Report) -> str:
    dense, kernels = report.model("dense"), report.kernels()
    ops = kernels["int8_compute_ops"]
    b1, b8 = report.speed(dense, "onnxruntime-int8"), report.speed(dense, "onnxruntime-int8", 8)
    points = 100 * abs(dense["accuracy"] - dense["int8"]["accuracy"])
    only = "only integer kernels" if not kernels["float_compute_ops"] else "float kernels too"
    tiny = report.model("plain/channels+int8-0.9")
    tiny_fp32, tiny_int8 = report.speed(tiny), report.speed(tiny, "onnxruntime-int8")
    int8_bullet = (f"- **int8 at {report.results['deploy_size']} px**: the dense model's int8 graph runs {only} "
                   f"({ops.get('QLinearConv', 0)} QLinearConv, {ops.get('QLinearAdd', 0)} QLinearAdd, QGemm; "
                   f"{100 * kernels['profile_int8_share']:.1f} % of the profiled time in them) and is "
                   f"×{b1['speedup']:.2f} faster than fp32 at batch 1, ×{b8['speedup']:.2f} at batch 8, at "
                   f"{percent(dense['int8']['accuracy'])} % vs {percent(dense['accuracy'])} % (target ≥ "
                   f"{INT8_SPEEDUP_TARGET}× within {INT8_POINTS_TARGET} points: "
                   f"{met(b1['speedup'] >= INT8_SPEEDUP_TARGET and points <= INT8_POINTS_TARGET)}). At "
                   f"{tiny['grid']['macs'][str(report.results['deploy_size'])] / 1e9:.2f} GMACs (channels 0.9) int8 "
                   f"is {'slower' if tiny_int8['compressed_ms'] > tiny_fp32['compressed_ms'] else 'faster'} than "
                   f"fp32 ({tiny_int8['compressed_ms']:.2f} vs {tiny_fp32['compressed_ms']:.2f} ms).")
    structured = {name: report.speed(m) for name, m in report.results["models"].items()
                  if name.startswith("plain/") and ("channels" in m["pipeline"] or "blocks" in m["pipeline"])}
    ratios = {name: s["speedup"] / s["mac_reduction"] for name, s in structured.items()}
    near = [r for name, r in ratios.items() if "blocks" in name or name == "plain/channels-0.5"]
    c7, c9 = structured["plain/channels-0.7"], structured["plain/channels-0.9"]
    moderate = [r for name, r in ratios.items() if structured[name]["mac_reduction"] <= c7["mac_reduction"]]
    meeting = sum(r >= SPEED_PER_MAC_TARGET for r in moderate)
    macs_bullet = (f"- **Speed-up against MACs** for structured pruning up to ×{c7['mac_reduction']:.0f}: channels "
                   f"0.5 and blocks give {min(near):.2f}-{max(near):.2f} of their MAC reduction, channels 0.7 "
                   f"{ratios['plain/channels-0.7']:.2f} (target ≥ {SPEED_PER_MAC_TARGET}: met by "
                   f"{in_words(meeting)} of those {in_words(len(moderate))}); channels 0.9 "
                   f"gets ×{c9['speedup']:.0f} for ×{c9['mac_reduction']:.0f} fewer MACs "
                   f"({ratios['plain/channels-0.9']:.2f}, {met(ratios['plain/channels-0.9'] >= SPEED_PER_MAC_TARGET)}"
                   f"; {report.model('plain/channels-0.9')['grid']['macs']['224'] / 1e6:.0f} MMACs per call).")

    def fast(name: str) -> str:
        return f"×{report.speed(report.model(f'round/{name}'))['speedup']:.2f}"

    def removed(name: str) -> str:
        return f"{100 * report.model(f'round/{name}')['channel_ratio_removed']:.1f}"

    round_bullet = (f"- **`round_to`**: one-shot `channels` 0.7 on the same baseline is {fast('channels-0.7-r1')} "
                    f"unrounded, {fast('channels-0.7-r8')} with `round_to` 8 and {fast('channels-0.7-r16')} with 16 "
                    f"(which also removes {removed('channels-0.7-r8')} / {removed('channels-0.7-r16')} % instead of "
                    f"{removed('channels-0.7-r1')} % of the channels); global 0.5: "
                    f"{fast('channels-0.5-global-r1')}, {fast('channels-0.5-global-r8')}, "
                    f"{fast('channels-0.5-global-r16')}.")
    run, threads = report.run, report.run["environment"]["cpu_count"]
    p, n = run["compressed"]["accuracy"], run["dataset"]["samples"]
    points_down = 100 * (run["baseline"]["accuracy"] - p)
    fastest = report.run_speed(threads)
    down = sorted(100 * (dense["accuracy"] - report.model(f"{m}/channels-0.7")["accuracy"])
                  for m in ("plain", "distilled"))
    eight_bullet = (f"- **≥ 8× within 1 point of dense: {'met' if fastest >= 8 and points_down <= 1 else 'not met'}"
                    f"** by one run made for it (`reports/deploy-224px/{RUN_224}`, its command inside): {percent(p)} % "
                    f"int8 (dense {percent(run['baseline']['accuracy'])} %, one seed; binomial SE "
                    f"{100 * math.sqrt(p * (1 - p) / n):.2f} points), ×{fastest:.2f} faster than dense fp32 ONNX "
                    f"Runtime at {run['deployment']['deploy_size']} px, batch 1, {threads} threads "
                    f"(×{report.run_speed(1):.2f} on 1 thread, ×{report.run_speed(threads, 8):.2f} at batch 8), "
                    f"{run['compressed']['deployable_bytes'] / 1e6:.2f} MB deployable. Without int8 the recovery "
                    f"models reach channels 0.5: ×{report.speed(report.model('plain/channels-0.5'))['speedup']:.2f}; "
                    f"channels 0.7: ×{c7['speedup']:.2f} at {down[0]:.1f}-{down[1]:.1f} points down.")
    return "\n".join((int8_bullet, macs_bullet, round_bullet, eight_bullet)) + "\n"


def headline(report: Report) -> str:
    run, threads = report.run, report.run["environment"]["cpu_count"]
    params = run["params"]["channels"]
    return (f"Channels {params['amount']:g} (`round_to` {params['round_to']}) + int8 after "
            f"{run['recovery']['finetune_epochs']:g} {'distilled' if run['recovery']['distill'] else 'plain'} epochs: "
            f"{percent(run['compressed']['accuracy'])} % (dense {percent(run['baseline']['accuracy'])} %), "
            f"×{report.run_speed(threads):.2f} faster than dense fp32 ONNX Runtime at "
            f"{run['deployment']['deploy_size']} px; the dense model's int8 alone is "
            f"×{report.speed(report.model('dense'), 'onnxruntime-int8')['speedup']:.2f} "
            "(`reports/deploy-224px/README.md`).\n")


RENDERERS: dict[str, Callable[[Report], str]] = {"table.md": table, "findings.md": findings, "headline.md": headline}


def render_fragments(root: Path) -> dict[str, str]:
    """Every fragment of the report directory `root`, by file name."""
    report = Report(root)
    return {name: render(report) for name, render in RENDERERS.items()}


def write_fragments(root: Path) -> None:
    """Write the fragments into `root` (atomically)."""
    from compressor.report.fragments import write_texts

    for path in write_texts(root, render_fragments(root)):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    write_fragments(Path(sys.argv[1] if len(sys.argv) > 1 else "reports/deploy-224px"))
