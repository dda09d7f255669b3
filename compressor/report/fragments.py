"""Markdown fragments of a report for the docs to include (MkDocs snippets), so no measured figure is copied by hand.

`compressor report` writes them beside README.md; `render_fragments(results, scores)` renders them again from the
report's results.json (and its OpenAImer score files), which is how the docs check knows a committed fragment still
says what its rows say. README.md, which GitHub shows without MkDocs, embeds fragments between markers
(`embed_fragments`) instead of including them.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compressor._util.fileio import write_atomic
from compressor.report.by_amount import accuracy_by_amount, amount_setting, cost_table
from compressor.report.pareto import WITHIN_DENSE, label, near_dense_picks
from compressor.report.summary import difference_table, load_scores, markdown_table, percent, scored_models

RUNS_TABLE = "runs.md"  # every run of the report: the README's run table
HEADLINE = "headline.md"  # what the runs say, in sentences: provenance, the best runs near dense, the verdicts
ACCURACY = "accuracy.md"  # top-1 of every strategy that takes an amount, by amount and fine-tuning budget
DIFFERENCES = "differences.md"  # the README's difference table (with --reference)
OPENAIMER = "openaimer.md"  # the OpenAImer score's winner against the most accurate scored model (with --openaimer)
# with --before-recovery: top-1 of the strategies alone (before BatchNorm recalibration or fine-tuning), and the
# difference table on it
ACCURACY_BEFORE = "accuracy-before-recovery.md"
DIFFERENCES_BEFORE = "differences-before-recovery.md"
COST = "cost.md"  # strategy seconds and peak memory by strategy and amount (runs that recorded their peak memory)
TIMING = "timing.md"  # the latency noise floor: the dense model timed in every run, and runs that keep its graph
FRAGMENT_NAMES = (RUNS_TABLE, HEADLINE, ACCURACY, DIFFERENCES, OPENAIMER, ACCURACY_BEFORE, DIFFERENCES_BEFORE, COST,
                  TIMING)

Row = Mapping[str, Any]


def render_fragments(results: Mapping[str, Any], scores: Sequence[Mapping[str, Any]] = ()) -> dict[str, str]:
    """The fragments of a report, by file name, from its results.json document and its OpenAImer score records."""
    rows = results["rows"]
    fragments = {RUNS_TABLE: markdown_table(rows), HEADLINE: headline(results)}
    if any(amount_setting(row) for row in rows):
        fragments[ACCURACY] = accuracy_by_amount(rows)
    if results.get("differences"):
        fragments[DIFFERENCES] = difference_table(results["differences"])
    if results.get("differences_before_recovery"):
        fragments[ACCURACY_BEFORE] = accuracy_by_amount(rows, "accuracy_before_recovery")
        fragments[DIFFERENCES_BEFORE] = difference_table(results["differences_before_recovery"])
    if any(row.get("peak_rss_bytes") for row in rows):
        fragments[COST] = cost_table(rows)
    if scores:
        fragments[OPENAIMER] = openaimer_summary(rows, scores)
    if (noise := latency_noise(rows)) is not None:
        fragments[TIMING] = noise
    return fragments


def render_report_fragments(report_dir: Path) -> dict[str, str]:
    """The fragments of a committed report directory: its results.json, and the OpenAImer score files that
    `compressor report --openaimer` read, where they were kept beside it in `openaimer/`."""
    results = json.loads((report_dir / "results.json").read_text())
    scores_dir = report_dir / "openaimer"
    return render_fragments(results, load_scores([scores_dir]) if scores_dir.is_dir() else [])


def write_fragments(results: Mapping[str, Any], out_dir: Path,
                    scores: Sequence[Mapping[str, Any]] = ()) -> list[Path]:
    """Write every fragment of the report into `out_dir` (atomically); returns their paths."""
    return write_texts(out_dir, render_fragments(results, scores))


def write_texts(out_dir: Path, texts: Mapping[str, str]) -> list[Path]:
    """Write {file name: text} into `out_dir`, each atomically (also for the fragments report scripts render)."""
    return [write_atomic(out_dir / name, lambda tmp, text=text: tmp.write_text(text)) for name, text in texts.items()]


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
                f"{label(best)} at {percent(best['accuracy'])} %.")
    size = (f"{smallest['deployable_bytes'] / 1e6:.2f} MB deployable (dense "
            f"{smallest['baseline_deployable_bytes'] / 1e6:.2f} MB)")
    if fastest is None:
        return f"{within}, the smallest file is {label(smallest)}: {size} at {percent(smallest['accuracy'])} %."
    ratio = _ratio(fastest)
    beside = f", x{ratio:.2f} of the dense model timed beside it" if ratio is not None else ""
    speed = f"{fastest['deployed_latency_ms']:.2f} ms{beside}"
    if fastest is smallest:
        return (f"{within}, the smallest file and the fastest model are the same run, {label(smallest)}: {size} "
                f"and {speed}, at {percent(smallest['accuracy'])} %.")
    return (f"{within}, the smallest file is {label(smallest)}, {size} at {percent(smallest['accuracy'])} %; the "
            f"fastest model is {label(fastest)}, {speed} at {percent(fastest['accuracy'])} %.")


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
    dense_text = f"{percent(dense[0])} %" if len(dense) == 1 else f"{percent(dense[0])}-{percent(dense[-1])} %"
    under_load = sum(1 for r in rows if r.get("timed_under_load"))
    load = f"; {under_load} timed under load" if under_load else ""
    return (f"{len(rows)} runs of {first['arch']} on {first['dataset']} at {first['input_size']} px (dense "
            f"{dense_text} test top-1), at commit {_one_or_many([r.get('git_commit') for r in rows], 'commit')} on "
            f"{_one_or_many([(r.get('machine') or '').split(', torch')[0] for r in rows], 'machine')}{load}. "
            f"{_best_near_dense(rows)}{_verdicts(results)}\n")


def _keeps_dense_graph(row: Row) -> bool:
    """The deployed model executes the dense model's graph (unstructured sparsity, no int8): the same kernels."""
    return row.get("macs") is not None and row.get("macs") == row.get("baseline_macs") \
        and row.get("latency_int8_ms") is None


def latency_noise(rows: Sequence[Row]) -> str | None:
    """How far timings of the same graph move inside this report: the dense model timed again in every run, and the
    ratio to it of the runs that deploy the same graph (their true ratio is 1). None with fewer than two timed runs."""
    timed = [row for row in rows if _ratio(row) is not None]
    if len(timed) < 2:
        return None
    dense = sorted(row["baseline_deployed_latency_ms"] for row in timed)
    same = [_ratio(row) for row in timed if _keeps_dense_graph(row)]
    text = (f"Latency noise in this report: the dense model, timed again inside each of {len(timed)} runs, measured "
            f"{dense[0]:.2f}-{dense[-1]:.2f} ms (median {statistics.median(dense):.2f} ms).")
    if len(same) >= 2:
        text += (f" The {len(same)} runs whose deployed model runs the dense graph (unstructured sparsity, no int8) "
                 f"measured x{min(same):.2f}-{max(same):.2f} of the dense model timed beside them, where the true "
                 "ratio is 1: a ratio inside that band is no speed difference. Compare runs by their ratio to the "
                 "dense model timed beside them, not by milliseconds across runs.")
    return text + "\n"


def openaimer_summary(rows: Sequence[Row], scores: Sequence[Mapping[str, Any]]) -> str:
    """The OpenAImer score's winner beside the least and the most accurate scored models, in one sentence."""
    names, ranked = scored_models(rows, scores)
    top = ranked[0]
    worst, best = min(ranked, key=lambda s: s["accuracy"]), max(ranked, key=lambda s: s["accuracy"])

    def model(score: Mapping[str, Any]) -> str:
        return f"{names[score['checkpoint']]} at {score['accuracy']:.2f} %"

    return (f"Under the OpenAImer score ({top['images']} test images at the protocol's 224 px), the top score, "
            f"{top['total_score']:.2f}, goes to {model(top)} top-1; the least accurate scored model, {model(worst)}, "
            f"scores {worst['total_score']:.2f}, and the most accurate, {model(best)}, {best['total_score']:.2f}.\n")


EMBED = re.compile(r"(<!-- fragment: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- /fragment -->)", re.S)


def embedded_fragments(text: str) -> list[tuple[str, str]]:
    """(fragment path, embedded text) of every `<!-- fragment: PATH -->` ... `<!-- /fragment -->` block in `text`."""
    return [(match["path"], match["body"]) for match in EMBED.finditer(text)]


def embed_fragments(text: str, root: Path) -> str:
    """`text` with every fragment block's body replaced by the current file it names (paths from `root`)."""
    return EMBED.sub(lambda m: m[1] + (root / m["path"]).read_text() + m[4], text)
