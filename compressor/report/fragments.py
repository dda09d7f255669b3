"""Markdown fragments of a report for the docs to include (MkDocs snippets), so no measured figure is copied by hand.

`compressor report` writes them beside README.md; `render_fragments(results)` renders them again from the report's
results.json alone, which is how the docs check knows a committed fragment still says what its rows say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compressor._util.fileio import write_atomic
from compressor.report.pareto import WITHIN_DENSE, label, near_dense_picks
from compressor.report.summary import markdown_table

RUNS_TABLE = "runs.md"  # every run of the report: the README's run table
HEADLINE = "headline.md"  # what the runs say, in sentences: provenance, the best runs near dense, the verdicts

Row = Mapping[str, Any]


def render_fragments(results: Mapping[str, Any]) -> dict[str, str]:
    """The fragments of a report, by file name, from its results.json document."""
    return {RUNS_TABLE: markdown_table(results["rows"]), HEADLINE: headline(results)}


def write_fragments(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write every fragment of the report into `out_dir` (atomically); returns their paths."""
    paths = []
    for name, text in render_fragments(results).items():
        paths.append(write_atomic(out_dir / name, lambda tmp, text=text: tmp.write_text(text)))
    return paths


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _ratio(row: Row) -> float | None:
    """The deployed latency against the baseline timed beside it in the same run (None when either is missing)."""
    if not row.get("deployed_latency_ms") or not row.get("baseline_deployed_latency_ms"):
        return None
    return row["deployed_latency_ms"] / row["baseline_deployed_latency_ms"]


def _one_or_many(values: Sequence[Any], what: str) -> str:
    distinct = sorted({str(v) for v in values if v})
    if not distinct:
        return f"no recorded {what}"
    return distinct[0] if len(distinct) == 1 else f"{len(distinct)} {what}s ({', '.join(distinct)})"


def _best_near_dense(rows: Sequence[Row]) -> str:
    """The README's picks (`near_dense_picks`) in a sentence, speed also against the dense model timed beside it."""
    smallest, fastest = near_dense_picks(rows)
    within = f"Within {100 * WITHIN_DENSE:g} point of dense top-1"
    if smallest is None:
        best = max(rows, key=lambda r: r["accuracy"])
        return (f"No run comes within {100 * WITHIN_DENSE:g} point of dense top-1; the most accurate is "
                f"{label(best)} at {_pct(best['accuracy'])} %.")
    size = (f"{smallest['deployable_bytes'] / 1e6:.2f} MB deployable (dense "
            f"{smallest['baseline_deployable_bytes'] / 1e6:.2f} MB)")
    if fastest is None:
        return f"{within}, the smallest file is {label(smallest)}: {size} at {_pct(smallest['accuracy'])} %."
    ratio = _ratio(fastest)
    beside = f", x{ratio:.2f} of the dense model timed beside it" if ratio is not None else ""
    speed = f"{fastest['deployed_latency_ms']:.2f} ms{beside}"
    if fastest is smallest:
        return (f"{within}, the smallest file and the fastest model are the same run, {label(smallest)}: {size} "
                f"and {speed}, at {_pct(smallest['accuracy'])} %.")
    return (f"{within}, the smallest file is {label(smallest)}, {size} at {_pct(smallest['accuracy'])} %; the "
            f"fastest model is {label(fastest)}, {speed} at {_pct(fastest['accuracy'])} %.")


def _verdicts(results: Mapping[str, Any]) -> str:
    diffs = results.get("differences") or []
    if not diffs:
        return ""
    counts = Counter(d["verdict"].replace(": ", " (") + (")" if ": " in d["verdict"] else "") for d in diffs)
    order = ["better", "worse", "no difference"]
    parts = ", ".join(f"{counts[v]} {v}" for v in sorted(counts, key=lambda v: (order + [v]).index(v)))
    seeds = sorted({d.get("pairs") or 0 for d in diffs})
    rests = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
    return (f" Against `{results.get('reference')}` at the same amount and fine-tuning, {len(diffs)} settings: "
            f"{parts}; each verdict rests on {rests} paired seed(s), and the report's difference table has each one.")


def headline(results: Mapping[str, Any]) -> str:
    """The report in three sentences: what ran where, the best runs near dense accuracy, and the verdicts."""
    rows = results["rows"]
    first = rows[0]
    dense = sorted({r["baseline_accuracy"] for r in rows})
    dense_text = f"{_pct(dense[0])} %" if len(dense) == 1 else f"{_pct(dense[0])}-{_pct(dense[-1])} %"
    under_load = sum(1 for r in rows if r.get("timed_under_load"))
    load = f"; {under_load} timed under load" if under_load else ""
    return (f"{len(rows)} runs of {first['arch']} on {first['dataset']} at {first['input_size']} px (dense "
            f"{dense_text} test top-1), at commit {_one_or_many([r.get('git_commit') for r in rows], 'commit')} on "
            f"{_one_or_many([(r.get('machine') or '').split(', torch')[0] for r in rows], 'machine')}{load}. "
            f"{_best_near_dense(rows)}{_verdicts(results)}\n")
