"""Aggregation, noise rule, targets, Markdown tables and plots for scripts/second_order_table.py.

Everything here is a pure function of cell dicts, the JSON files one (label, amount, seed) run writes; the fields
used are label, amount, seed, accuracy {"no": a, "yes": b} (test top-1 as a fraction, without and with BatchNorm
recalibration), test_samples, strategy_seconds, peak_rss_gib and cuda_peak_gib. Aggregates are in percent and
differences in percentage points ("points"); cells keep fractions.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from compressor.report import uncertainty

Cell = Mapping[str, Any]
BN_MODES = ("no", "yes")
BN_TEXT = {"no": "without BN recalibration", "yes": "with BN recalibration"}
NOISE_RULE = (
    "A paired difference d_s = acc(method, seed s) − acc(reference, seed s) (same amount, same BN mode) counts "
    "as beyond noise only if its two-sided p-value is below 0.05, with SE = sqrt(std(d)²/n + p_m(1−p_m)/N + "
    "p_r(1−p_r)/N): the standard error of the mean over the n seeds plus the binomial standard errors of the two "
    "mean accuracies p_m, p_r on the N test images (the test set is the same for every seed, so that term does not "
    "shrink with n; the two are treated as independent, which is conservative), and Student's t with n − 1 degrees "
    "of freedom, so 2-3 seeds are not treated as a known error. With n = 1 the seed term is unknown and left out "
    "(a z test). ± is the 95 % confidence half-width of the mean difference.")
TARGET_AMOUNT = 0.95
TARGET_GAIN_POINTS = 5.0
TARGET_SECONDS = 15 * 60
TARGET_LEARNED = 0.9
TARGET_GIB = 8.0
COLLAPSED = 1.5  # a mean accuracy below COLLAPSED × chance is drawn clipped at the bottom of the plots


def cell_name(label: str, amount: float, seed: int) -> str:
    """The file stem of a cell: {label}-{amount}-s{seed}."""
    return f"{label}-{float(amount)!r}-s{int(seed)}"


def binomial_se(p: float, n: int) -> float:
    """Standard error of an accuracy p measured on n test images (0 when n is unknown)."""
    return uncertainty.binomial_se(p, n) or 0.0


def _same(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)


def by_seed(cells: Sequence[Cell], label: str, amount: float, bn: str, key: str = "accuracy") -> dict[int, float]:
    """seed → cell[key][bn] (or cell[key] when not per BN mode) of `label` at `amount`; missing ones left out."""
    out = {}
    for cell in cells:
        if cell.get("label") == label and _same(cell.get("amount", -1), amount):
            value = cell.get(key)
            value = value.get(bn) if isinstance(value, Mapping) else value
            if value is not None:
                out[int(cell["seed"])] = float(value)
    return out


def _samples(cells: Sequence[Cell], label: str, amount: float) -> int:
    counts = [int(c["test_samples"]) for c in cells if c.get("label") == label and _same(c.get("amount", -1), amount)
              and c.get("test_samples")]
    return min(counts) if counts else 0


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (None below two values) and n."""
    n = len(values)
    return {"mean": statistics.fmean(values) if n else None, "std": statistics.stdev(values) if n > 1 else None,
            "n": n}


def aggregate(cells: Sequence[Cell], labels: Sequence[str], amounts: Sequence[float]) -> list[dict[str, Any]]:
    """Per (label, amount, BN mode): test accuracy mean ± sample std over the seeds present (in percent) and n."""
    rows = []
    for label in labels:
        for amount in amounts:
            for bn in BN_MODES:
                values = by_seed(cells, label, amount, bn)
                s = summary([100 * v for v in values.values()])
                rows.append({"label": label, "amount": amount, "bn": bn, "mean_pct": s["mean"], "std_pct": s["std"],
                             "n": s["n"], "seeds": sorted(values)})
    return rows


def paired_difference(cells: Sequence[Cell], label: str, base: str, amount: float, bn: str) -> dict[str, Any]:
    """acc(label) − acc(base) paired by seed, in points: mean, std, SE, test and p of the noise rule, verdict."""
    a, b = by_seed(cells, label, amount, bn), by_seed(cells, base, amount, bn)
    seeds = sorted(a.keys() & b.keys())
    row: dict[str, Any] = {"label": label, "base": base, "amount": amount, "bn": bn, "seeds": seeds, "n": len(seeds)}
    if not seeds:
        return {**row, "mean_points": None, "std_points": None, "se_points": None, "test": None, "p": None,
                "half_width_points": None, "verdict": "no data"}
    pa, pb = statistics.fmean(a[s] for s in seeds), statistics.fmean(b[s] for s in seeds)
    test_set = 100 * math.hypot(binomial_se(pa, _samples(cells, label, amount)),
                                binomial_se(pb, _samples(cells, base, amount)))
    tested = uncertainty.paired_test([100 * (a[s] - b[s]) for s in seeds], fixed_se=test_set)
    return {**row, "mean_points": tested.mean, "std_points": tested.sd, "se_points": tested.se, "test": tested.test,
            "p": tested.p, "half_width_points": tested.half_width, "accuracy_pct": 100 * pa,
            "base_accuracy_pct": 100 * pb, "verdict": tested.verdict}


def differences(cells: Sequence[Cell], labels: Sequence[str], reference: str,
                amounts: Sequence[float]) -> list[dict[str, Any]]:
    """Every label but the reference against the reference, per amount and BN mode."""
    return [paired_difference(cells, label, reference, amount, bn)
            for label in labels if label != reference for amount in amounts for bn in BN_MODES]


def pick(specs: Mapping[str, Mapping[str, Any]], strategy: str) -> str | None:
    """The label called `strategy`, else the first label running that strategy, else None."""
    if strategy in specs:
        return strategy
    return next((label for label, spec in specs.items() if spec.get("strategy") == strategy), None)


def _diff_text(d: Mapping[str, Any]) -> str:
    if d["mean_points"] is None:
        return "no paired seeds"
    std = "-" if d["std_points"] is None else f"{d['std_points']:.2f}"
    return (f"{d['label']} − {d['base']} = {d['mean_points']:+.2f} ± {std} points (n={d['n']}, {d['test']}, "
            f"p {_p(d['p'])}): {d['verdict']}")


def targets(cells: Sequence[Cell], specs: Mapping[str, Mapping[str, Any]],
            amounts: Sequence[float]) -> list[dict[str, str]]:
    """The four targets, each met / not met / no data with the numbers behind it."""
    fishleg, l1 = pick(specs, "fishleg"), pick(specs, "l1")
    out = []
    at = next((a for a in amounts if _same(a, TARGET_AMOUNT)), None)

    def add(name: str, status: str, detail: str) -> None:
        out.append({"target": name, "status": status, "detail": detail})

    obds = [label for label, spec in specs.items() if spec.get("strategy") == "obd"]
    name = f"(1) fishleg vs obd at {TARGET_AMOUNT:g}, with BN recalibration"
    if fishleg and obds and at is not None:
        for label in obds:
            d = paired_difference(cells, fishleg, label, at, "yes")
            add(f"{name} [{label}]", "no data" if d["mean_points"] is None else
                "met" if d["verdict"] == "better" else "not met", _diff_text(d) + " (met: better beyond noise)")
    else:
        add(name, "no data", f"needs fishleg, obd and amount {TARGET_AMOUNT:g}")
    name = f"(2) fishleg ≥ l1 + {TARGET_GAIN_POINTS:g} points at {TARGET_AMOUNT:g}"
    if fishleg and l1 and at is not None:
        yes, no = (paired_difference(cells, fishleg, l1, at, bn) for bn in ("yes", "no"))
        status = "no data" if yes["mean_points"] is None else \
            "met" if yes["mean_points"] >= TARGET_GAIN_POINTS else "not met"
        add(name, status, f"with BN: {_diff_text(yes)}; without BN (for reference): {_diff_text(no)} "
                          f"(met: mean difference with BN ≥ {TARGET_GAIN_POINTS:g})")
    else:
        add(name, "no data", f"needs fishleg, l1 and amount {TARGET_AMOUNT:g}")
    name = "(3) layer-sensitive no worse than l1 beyond noise, every amount, with and without BN"
    sensitive = [label for label, spec in specs.items() if spec.get("strategy") == "layer-sensitive"]
    if sensitive and l1:
        for label in sensitive:
            ds = [paired_difference(cells, label, l1, a, bn) for a in amounts for bn in BN_MODES]
            status = "no data" if any(d["mean_points"] is None for d in ds) else \
                "not met" if any(d["verdict"] == "worse" for d in ds) else "met"
            add(f"{name} [{label}]", status, "; ".join(f"{d['amount']:g} {'BN' if d['bn'] == 'yes' else 'no BN'}: "
                                                        f"{_diff_text(d)}" for d in ds))
    else:
        add(name, "no data", "needs a layer-sensitive method and l1")
    name = f"(4) fishleg ≤ {TARGET_SECONDS // 60} min and ≤ {TARGET_GIB:g} GiB per cell"
    mine = [c for c in cells if c.get("label") == fishleg]
    if mine:
        seconds = max(float(c["strategy_seconds"]) for c in mine)
        memory = max(max(float(c["peak_rss_gib"]), float(c.get("cuda_peak_gib") or 0)) for c in mine)
        add(name, "met" if seconds <= TARGET_SECONDS and memory <= TARGET_GIB else "not met",
            f"slowest of {len(mine)} cells {seconds:.0f} s, largest peak memory {memory:.2f} GiB (max of process RSS "
            "and CUDA allocated)")
    else:
        add(name, "no data", "no fishleg cell")
    name = (f"(5) fishleg's fitted Q beats its diagonal start on held-out probes in ≥ {100 * TARGET_LEARNED:g} % "
            "of layers")
    fits = [fit for c in mine for fit in (c.get("fishleg") or {}).get("fits", [])]
    if fits:
        first = [(c["fishleg"]["fits"][0]["layers_accepted"], c["fishleg"]["fits"][0]["layers"]) for c in mine
                 if (c.get("fishleg") or {}).get("fits")]
        worst = min(accepted / layers for accepted, layers in first)
        overall = sum(f["layers_accepted"] for f in fits) / sum(f["layers"] for f in fits)
        add(name, "met" if worst >= TARGET_LEARNED else "not met",
            f"first fit of each cell: worst {100 * worst:.0f} % of layers ({len(first)} cells); all {len(fits)} fits "
            f"and refits: {100 * overall:.0f} % of layer fits kept")
    else:
        add(name, "no data", "no fishleg cell with fit diagnostics")
    return out


def _p(value: float | None) -> str:
    return "-" if value is None else "<0.001" if value < 0.001 else f"{value:.3g}"


def _pm(mean: float | None, std: float | None, n: int, expected: int, sign: bool = False) -> str:
    if mean is None:
        return "-"
    text = f"{mean:+.2f}" if sign else f"{mean:.2f}"
    text += f" ± {std:.2f}" if std is not None else ""
    return text + (f" (n={n})" if n != expected else "")


def _amount_header(amounts: Sequence[float]) -> list[str]:
    return ["| method | " + " | ".join(f"{100 * a:g} %" for a in amounts) + " |", "|---|" + "---|" * len(amounts)]


def accuracy_table(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], amounts: Sequence[float], bn: str,
                   seeds: int) -> list[str]:
    """Markdown rows: test accuracy mean ± std (n shown where seeds are missing), methods × amounts."""
    index = {(r["label"], r["amount"], r["bn"]): r for r in rows}
    lines = _amount_header(amounts)
    for label in labels:
        cells = []
        for amount in amounts:
            r = index.get((label, amount, bn))
            cells.append("-" if r is None else _pm(r["mean_pct"], r["std_pct"], r["n"], seeds))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def difference_table(diffs: Sequence[Mapping[str, Any]], labels: Sequence[str], amounts: Sequence[float], bn: str,
                     seeds: int) -> list[str]:
    """Markdown rows: mean ± std of the paired difference to the reference, its 95 % half-width, p and verdict."""
    index = {(d["label"], d["amount"], d["bn"]): d for d in diffs}
    lines = _amount_header(amounts)
    for label in labels:
        if not any((label, a, bn) in index for a in amounts):
            continue
        cells = []
        for amount in amounts:
            d = index.get((label, amount, bn))
            if d is None or d["mean_points"] is None:
                cells.append("-")
                continue
            verdict_text = d["verdict"] if d["verdict"] == "no difference" else f"**{d['verdict']}**"
            cells.append(f"{_pm(d['mean_points'], d['std_points'], d['n'], seeds, sign=True)}; "
                         f"95 % ± {d['half_width_points']:.2f}, p {_p(d['p'])}; {verdict_text}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def cost_table(cells: Sequence[Cell], labels: Sequence[str], amounts: Sequence[float]) -> list[str]:
    """Markdown rows: strategy seconds (mean over seeds) and peak memory (max over seeds) per method and amount."""
    lines = _amount_header(amounts)
    for label in labels:
        row = []
        for amount in amounts:
            mine = [c for c in cells if c.get("label") == label and _same(c.get("amount", -1), amount)]
            if not mine:
                row.append("-")
                continue
            seconds = statistics.fmean(float(c["strategy_seconds"]) for c in mine)
            rss = max(float(c["peak_rss_gib"]) for c in mine)
            gpu = max((float(c.get("cuda_peak_gib") or 0) for c in mine), default=0.0)
            row.append(f"{seconds:.1f} s, {rss:.2f} GiB" + (f" (GPU {gpu:.2f} GiB)" if gpu else ""))
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return lines


def fishleg_probe_table(probes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Markdown rows for scripts/fishleg_probe.py results: one step of FishLeg vs OBD on the same Fisher."""
    lines = ["| file | settings | layers whose fit beats the diagonal (held out) | auxiliary loss, first → last step "
             "| pruned weights chosen differently | test top-1 after BN: obd / fishleg (%) | fishleg seconds |",
             "|---|---|---|---|---|---|---|"]
    for name, p in sorted(probes.items()):
        fit, decisions = p["fit"], p["decisions"]
        settings = (", ".join(f"{k}={v}" for k, v in p["fishleg_params"].items()) or "no overrides") + \
            f" (defaults of git {p['environment'].get('git_commit')})"
        lines.append(f"| `{name}` | {settings} | {fit['layers_accepted']} / {fit['layers']} | "
                     f"{fit['aux_loss_first']:.3g} → {fit['aux_loss_last']:.3g} | {decisions['different']:,} of "
                     f"{decisions['pruned']:,} ({100 * decisions['different_fraction']:.2f} %) | "
                     f"{100 * p['obd']['test_accuracy_after_bn']:.2f} / "
                     f"{100 * p['fishleg']['test_accuracy_after_bn']:.2f}"
                     f" | {p['fishleg']['seconds']:.0f} |")
    return lines


def allocation_table(cells: Sequence[Cell], labels: Sequence[str], amounts: Sequence[float]) -> list[str]:
    """Markdown rows: the allocation layer-sensitive chose in each seed, for labels whose cells record one."""
    lines = []
    for label in labels:
        mine = [c for c in cells if c.get("label") == label and c.get("allocation")]
        if not mine:
            continue
        if not lines:
            lines = _amount_header(amounts)
        row = []
        for amount in amounts:
            picks = sorted((int(c["seed"]), c["allocation"]["chosen"]) for c in mine if _same(c["amount"], amount))
            row.append(", ".join(f"s{seed} {chosen}" for seed, chosen in picks) or "-")
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return lines
