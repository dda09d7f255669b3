"""The second-order reports' targets and layer-sensitive's allocations, as Markdown fragments beside the report.

`compressor report --reference l1 --before-recovery` writes the tables, differences and figures of a second-order
sweep (scripts/second-order-reports.sh); this adds what only these reports ask, from the same runs:

    .venv/bin/python scripts/second_order_targets.py runs/sweeps/second-order-fashion-mnist \
        reports/second-order-fashion-mnist

It reads the report's results.json and, from the sweep's cell records, FishLeg's fit diagnostics and
layer-sensitive's chosen allocation; writes targets.json (those, reduced to what the fragments use), targets.md and
allocation.md. `--render REPORT` writes the fragments again from results.json and targets.json alone, which is how
the docs check knows the committed ones still say what the runs say. Every difference is `uncertainty.differences`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compressor._util.fileio import write_atomic, write_json_atomic
from compressor.report.by_amount import amount_setting
from compressor.report.numbers import p_value
from compressor.report.schema import read_cell_records
from compressor.report.uncertainty import Difference, differences

TARGET_AMOUNT = 0.95
TARGET_GAIN_POINTS = 5.0
TARGET_SECONDS = 15 * 60
TARGET_GIB = 8.0
TARGET_LEARNED = 0.9
Row = Mapping[str, Any]


def diagnostics(sweep: Path) -> dict[str, Any]:
    """From the sweep's finished cells: FishLeg's fits per run, and layer-sensitive's chosen allocation per run."""
    fits, allocations = [], []
    for record in read_cell_records(sweep).values():
        if record.status != "done" or record.report is None:
            continue
        for step in record.report.steps:
            run = {"amount": step.params.get("amount"), "seed": record.report.model.seed}
            if step.strategy == "fishleg" and step.record.get("fishleg", {}).get("fits"):
                fits.append({**run, "fits": [{"layers": f["layers"], "layers_accepted": f["layers_accepted"]}
                                             for f in step.record["fishleg"]["fits"]]})
            if step.strategy == "layer-sensitive" and "allocation" in step.record:
                allocations.append({**run, "chosen": step.record["allocation"]["chosen"]})
    key = lambda run: (run["amount"], run["seed"])  # noqa: E731
    return {"fishleg_fits": sorted(fits, key=key), "layer_sensitive_allocations": sorted(allocations, key=key)}


def _at(diffs: Sequence[Difference], pipeline: str, amount: float) -> Difference | None:
    return next((d for d in diffs if d.pipeline == pipeline and d.amount == amount), None)


def _text(d: Difference | None, name: str, base: str) -> str:
    if d is None:
        return f"no paired runs of {name} and {base}"
    return (f"{name} − {base} = {d.mean:+.2f} points (95 % ± {d.half_width or 0:.2f}, {d.pairs} seeds, {d.test}, "
            f"p {p_value(d.p)}): {d.verdict}")


def _variants(rows: Sequence[Row], pipeline: str) -> dict[str, list[Row]]:
    """The runs of `pipeline` by parameter set other than the amount (obd and obd with a sampled Fisher)."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        if row["pipeline"] == pipeline:
            out.setdefault(amount_setting(row)[1], []).append(row)
    return out


def targets(rows: Sequence[Row], diag: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(target, met / not met / no data, the numbers behind it) for the five targets of the second-order work."""
    out = []
    fishleg = [r for r in rows if r["pipeline"] == "fishleg"]
    for params, obd in _variants(rows, "obd").items():
        d = _at(differences([*fishleg, *obd], "obd"), "fishleg", TARGET_AMOUNT)
        name = f"obd ({params})" if params else "obd"
        out.append((f"(1) fishleg better than {name} beyond noise at {TARGET_AMOUNT:g}, after BN recalibration",
                    "no data" if d is None else "met" if d.verdict == "better" else "not met",
                    _text(d, "fishleg", name)))
    after = _at(differences(rows, "l1"), "fishleg", TARGET_AMOUNT)
    before = _at(differences(rows, "l1", "accuracy_before_recovery"), "fishleg", TARGET_AMOUNT)
    out.append((f"(2) fishleg ≥ l1 + {TARGET_GAIN_POINTS:g} points at {TARGET_AMOUNT:g}, after BN recalibration",
                "no data" if after is None else "met" if after.mean >= TARGET_GAIN_POINTS else "not met",
                f"{_text(after, 'fishleg', 'l1')}; before recalibration: {_text(before, 'fishleg', 'l1')}"))
    sensitive = [(metric, d) for metric in ("accuracy_before_recovery", "accuracy")
                 for d in differences(rows, "l1", metric) if d.pipeline == "layer-sensitive"]
    out.append(("(3) layer-sensitive no worse than l1 beyond noise at every amount, before and after BN "
                "recalibration", "no data" if not sensitive else
                "not met" if any(d.verdict == "worse" for _, d in sensitive) else "met",
                "; ".join(f"{d.amount:g} {'after' if metric == 'accuracy' else 'before'}: {d.mean:+.2f} points, "
                          f"{d.verdict}" for metric, d in sorted(sensitive, key=lambda m: (m[1].amount, m[0])))))
    if fishleg:
        seconds = max(r["strategy_seconds"] for r in fishleg)
        peaks = [r.get("peak_rss_bytes") for r in fishleg]
        peak = None if None in peaks else max(peaks) / 2 ** 30
        out.append((f"(4) fishleg ≤ {TARGET_SECONDS // 60} min and ≤ {TARGET_GIB:g} GiB per run",
                    "no data" if peak is None else
                    "met" if seconds <= TARGET_SECONDS and peak <= TARGET_GIB else "not met",
                    f"slowest of {len(fishleg)} runs {seconds:.0f} s of strategy time, largest peak resident memory "
                    + ("not recorded" if peak is None else f"{peak:.2f} GiB")))
    fits = diag.get("fishleg_fits", [])
    if fits:
        worst = min(run["fits"][0]["layers_accepted"] / run["fits"][0]["layers"] for run in fits)
        every = [fit for run in fits for fit in run["fits"]]
        kept = sum(f["layers_accepted"] for f in every) / sum(f["layers"] for f in every)
        out.append((f"(5) fishleg's fitted Q beats its diagonal start on held-out probes in ≥ "
                    f"{100 * TARGET_LEARNED:g} % of layers", "met" if worst >= TARGET_LEARNED else "not met",
                    f"first fit of each run: worst {100 * worst:.0f} % of layers ({len(fits)} runs); all {len(every)} "
                    f"fits and refits: {100 * kept:.0f} % of layer fits kept"))
    return out


def render(results: Mapping[str, Any], diag: Mapping[str, Any]) -> dict[str, str]:
    """targets.md and (when layer-sensitive ran) allocation.md."""
    fragments = {"targets.md": "".join(f"- {name}: **{status}**. {detail}.\n"
                                       for name, status, detail in targets(results["rows"], diag))}
    allocations = diag.get("layer_sensitive_allocations", [])
    if allocations:
        amounts = sorted({run["amount"] for run in allocations})
        picks = [", ".join(f"s{run['seed']} {run['chosen']}" for run in allocations if run["amount"] == amount)
                 for amount in amounts]
        fragments["allocation.md"] = ("| allocation chosen by layer-sensitive | " + " | ".join(
            f"{100 * a:g} %" for a in amounts) + " |\n|---|" + "---|" * len(amounts) + "\n| seed: allocation | "
            + " | ".join(picks) + " |\n")
    return fragments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, nargs="?", help="the sweep directory the report was written from")
    parser.add_argument("report", type=Path, nargs="?", help="the report directory (compressor report --out)")
    parser.add_argument("--render", type=Path, metavar="REPORT", help="only re-render the fragments of REPORT")
    args = parser.parse_args()
    report = args.render or args.report
    if report is None or (args.render is None and args.sweep is None):
        parser.error("pass SWEEP REPORT, or --render REPORT")
    if args.render is None:
        write_json_atomic(diagnostics(args.sweep), report / "targets.json")
    results = json.loads((report / "results.json").read_text())
    diag = json.loads((report / "targets.json").read_text())
    for name, text in render(results, diag).items():
        write_atomic(report / name, lambda tmp, text=text: tmp.write_text(text))
        print(f"wrote {report / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
