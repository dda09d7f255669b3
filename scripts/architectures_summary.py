"""reports/architectures-fashion-mnist/: one line per architecture from the per-architecture `compressor report`
summaries that scripts/architectures-fashion-mnist.sh writes (ARCH/results.json, each with `--reference int8`).

    .venv/bin/python scripts/architectures_summary.py reports/architectures-fashion-mnist

Writes README.md and `overview.md` (the table docs/strategies.md includes): per architecture, the dense model, int8
alone, and the structured + int8 recipe that is fastest within 1 point of dense (else the most accurate), each as
the mean over its seeds with the spread, the speed-up against the dense model timed beside it in the same run
(deployed artifact, batch 1), the deployable size, and the paired verdict against int8 alone: what pruning adds.
`render_fragments(report)` re-renders overview.md from the committed files (tests/reports/test_fragments.py).
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compressor.report.uncertainty import accuracy_text, seed_groups

WITHIN = 0.01  # "near dense": at most 1 point of top-1 below it
Row = Mapping[str, Any]


def _setting(rows: Sequence[Row], pipeline: str) -> dict[str, Any] | None:
    """The runs of one pipeline (`uncertainty.seed_groups`): top-1 over seeds as the reports write it, the mean
    speed-up against the dense model timed beside each run, the mean deployable bytes."""
    runs = [r for r in rows if r["pipeline"] == pipeline]
    if not runs:
        return None
    (group,) = seed_groups(runs)
    return {"pipeline": pipeline, "params": group.setting["params"], "accuracy": group.mean,
            "text": accuracy_text(group.mean, group.spread, group.spread_kind, group.n),
            "speedup": statistics.fmean(r["baseline_deployed_latency_ms"] / r["deployed_latency_ms"] for r in runs),
            "bytes": group.mean_of("deployable_bytes"), "int8_share": _int8_share(runs)}


def _int8_share(runs: Sequence[Row]) -> float | None:
    """Mean share of the int8 graph's profiled time in integer kernels over runs that recorded it (RunRow)."""
    shares = [r["int8_kernel_share"] for r in runs if r.get("int8_kernel_share") is not None]
    return statistics.fmean(shares) if shares else None


def _share_text(setting: Mapping[str, Any] | None) -> str:
    share = setting and setting.get("int8_share")
    return "-" if share is None else f"{100 * share:.0f} %"


def architecture_line(results: Mapping[str, Any]) -> dict[str, Any]:
    """The overview's facts for one architecture's report."""
    rows = results["rows"]
    dense = rows[0]["baseline_accuracy"]
    settings = [s for s in (_setting(rows, p) for p in sorted({r["pipeline"] for r in rows}) if p != "int8") if s]
    near = [s for s in settings if s["accuracy"] >= dense - WITHIN]
    best = max(near, key=lambda s: s["speedup"]) if near else max(settings, key=lambda s: s["accuracy"])
    verdict = next((d for d in results.get("differences", []) if d["pipeline"] == best["pipeline"]), None)
    return {"arch": rows[0]["arch"], "input_size": rows[0]["input_size"], "dense": dense,
            "dense_bytes": rows[0]["baseline_deployable_bytes"], "int8": _setting(rows, "int8"), "best": best,
            "near_dense": bool(near), "against_int8": verdict}


def overview(lines: Sequence[Mapping[str, Any]]) -> str:
    table = ["| architecture | px | dense top-1 % | int8 top-1 % | int8 × | int8 kernels | structured + int8 | "
             "top-1 % | × | int8 kernels | MB (dense) | against int8 alone |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for line in lines:
        int8, best, verdict = line["int8"], line["best"], line["against_int8"]
        against = "-" if verdict is None else (f"{verdict['mean']:+.2f} points, {verdict['verdict']} "
                                              f"({verdict['pairs']} pairs)")
        int8_speed = f"{int8['speedup']:.2f}" if int8 else "-"
        near = "" if line["near_dense"] else ", none within 1 point"
        table.append(f"| `{line['arch']}` | {line['input_size']} | {100 * line['dense']:.2f} | "
                     f"{int8['text'] if int8 else '-'} | {int8_speed} | {_share_text(int8)} | "
                     f"{best['pipeline']} ({best['params']}){near} | "
                     f"{best['text']} | {best['speedup']:.2f} | {_share_text(best)} | {best['bytes'] / 1e6:.2f} "
                     f"({line['dense_bytes'] / 1e6:.2f}) | {against} |")
    return ("Per architecture: top-1 as mean ± sd over seeds (runs in brackets; one run: ± its binomial standard "
            "error); × is the deployed artifact's speed-up "
            "against the dense model timed beside it in the same run (batch 1, median); the structured + int8 row "
            "is the fastest within 1 point of dense, else the most accurate; *int8 kernels* is the share of the "
            "int8 graph's profiled ONNX Runtime time spent in integer kernels (the rest runs float kernels, e.g. "
            "attention, GELU or LayerNorm left in float; mean over seeds); *against int8 alone* is its top-1 "
            "minus int8's, paired by seed, with the report's verdict.\n\n" + "\n".join(table) + "\n")


def render_fragments(report: Path) -> dict[str, str]:
    lines = [architecture_line(json.loads(path.read_text()))
             for path in sorted(report.glob("*/results.json"))]
    return {"overview.md": overview(lines)}


def main() -> None:
    from compressor.report.fragments import write_texts

    report = Path(sys.argv[1] if len(sys.argv) > 1 else "reports/architectures-fashion-mnist")
    fragments = render_fragments(report)
    readme = ("# Modern architectures on Fashion-MNIST: dense, int8, structured + int8 with recovery\n\n"
              "Regenerate: `scripts/architectures-fashion-mnist.sh` (the grid is "
              "`scripts/grids/architectures-fashion-mnist.toml`). Each architecture's own report, with every run, "
              "its command and environment, is in its folder here.\n\n" + fragments["overview.md"])
    for path in write_texts(report, {**fragments, "README.md": readme}):
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
