"""Trade-offs between accuracy and cost over many runs: Pareto fronts and budget picks.

Rows are `RunRow.as_dict()` mappings (see `compressor.report.schema`), or any mapping with the columns used here.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from compressor.errors import CompressorError

Row = Mapping[str, Any]


def typical_baseline(rows: Sequence[Row], key: str) -> float | None:
    """The median over runs of a baseline figure each run measures again (its latency): one noisy run cannot move it."""
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else None


def pareto_front(rows: Sequence[Row], cost: str) -> list[int]:
    """Indices of rows no other row dominates (as accurate at no more cost, better in one), cheapest first."""
    points = [(row[cost], row["accuracy"], i) for i, row in enumerate(rows) if row.get(cost) is not None]

    def dominated(c: float, a: float) -> bool:
        return any(oc <= c and oa >= a and (oc < c or oa > a) for oc, oa, _ in points)

    return [i for c, a, i in sorted(points) if not dominated(c, a)]


WITHIN_DENSE = 0.01  # "near dense": at most one point of top-1 below the baseline


def near_dense_picks(rows: Sequence[Row]) -> tuple[Row | None, Row | None]:
    """The smallest file and the fastest model among the runs within one point of the baseline's top-1 (None when
    no run qualifies)."""
    floor = rows[0]["baseline_accuracy"] - WITHIN_DENSE
    smallest = pick_under_budget(rows, min_accuracy=floor)["pick"]
    within = [r for r in rows if r["accuracy"] >= floor and r["deployed_latency_ms"] is not None]
    return smallest, min(within, key=lambda r: r["deployed_latency_ms"], default=None)


def pick_under_budget(rows: Sequence[Row], *, max_size_mb: float | None = None,
                      max_latency_ms: float | None = None, min_accuracy: float | None = None) -> dict[str, Any]:
    """The best row within the budget, and a sentence saying why it won.

    Size and latency limits are constraints and accuracy the objective; with only an accuracy floor the smallest
    file wins (the fastest model breaks ties).
    """
    if max_size_mb is None and max_latency_ms is None and min_accuracy is None:
        raise CompressorError("a budget needs at least one of --max-size-mb, --max-latency-ms, --min-accuracy")
    limits = []
    if max_size_mb is not None:
        limits.append(f"file <= {max_size_mb:g} MB")
    if max_latency_ms is not None:
        limits.append(f"latency <= {max_latency_ms:g} ms")
    if min_accuracy is not None:
        limits.append(f"top-1 >= {100 * min_accuracy:.2f} %")

    def fits(row: Row) -> bool:
        latency = row.get("deployed_latency_ms")
        return ((max_size_mb is None or row["deployable_bytes"] <= max_size_mb * 1e6)
                and (max_latency_ms is None or (latency is not None and latency <= max_latency_ms))
                and (min_accuracy is None or row["accuracy"] >= min_accuracy))

    eligible = [row for row in rows if fits(row)]
    budget = ", ".join(limits)
    if not eligible:
        return {"budget": budget, "pick": None, "why": f"no run meets the budget ({budget}) among {len(rows)} runs"}
    if max_size_mb is None and max_latency_ms is None:
        ranked = sorted(eligible, key=lambda r: (r["deployable_bytes"], r.get("deployed_latency_ms") or 0.0))
        reason = "the smallest deployable file"
        detail = lambda r: f"{r['deployable_bytes'] / 1e6:.2f} MB"  # noqa: E731
    else:
        ranked = sorted(eligible, key=lambda r: (-r["accuracy"], r["deployable_bytes"]))
        reason = "the highest top-1 accuracy"
        detail = lambda r: f"{100 * r['accuracy']:.2f} %"  # noqa: E731
    pick = ranked[0]
    why = (f"{label(pick)}: {reason} ({detail(pick)}) among the {len(eligible)} of {len(rows)} runs that meet the "
           f"budget ({budget}); top-1 {100 * pick['accuracy']:.2f} %, {pick['deployable_bytes'] / 1e6:.2f} MB, "
           f"{_latency_text(pick)}")
    if len(ranked) > 1:
        why += f"; runner-up {label(ranked[1])} ({detail(ranked[1])})"
    return {"budget": budget, "pick": pick, "why": why}


def label(row: Row) -> str:
    """A short name for a row: pipeline, its parameters and fine-tuning."""
    tune = f" +ft{row['finetune_epochs']}" if row.get("finetune_epochs") else ""
    params = f" ({row['params']})" if row.get("params") else ""
    return f"{row['pipeline']}{params}{tune}"


def _latency_text(row: Row) -> str:
    latency = row.get("deployed_latency_ms")
    return "latency not measured" if latency is None else f"{latency:.2f} ms"
