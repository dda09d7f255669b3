"""Presenting results: the rich comparison table of a run."""

from __future__ import annotations

from typing import Any

from rich.table import Table

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("accuracy", "top-1 accuracy", "pct"),
    ("f1_macro", "macro F1", "ratio3"),
    ("sparsity", "sparsity (conv+linear weights)", "pct"),
    ("sparsity_all", "sparsity (all parameters)", "pct"),
    ("params_nonzero", "non-zero parameters", "count"),
    ("macs", "MACs (dense)", "count"),
    ("size_bytes", "fp32 state_dict file", "bytes"),
    ("latency_ms", "latency torch CPU bs1 (median)", "ms"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * value:.2f} %"
    if kind == "ratio3":
        return f"{value:.3f}"
    if kind == "count":
        return f"{value / 1e6:.3f} M" if value >= 1e5 else f"{value:,}"
    if kind == "bytes":
        return f"{value / 1e6:.2f} MB"
    if kind == "ms":
        return f"{value:.2f} ms"
    return str(value)


def _change(before: Any, after: Any, kind: str) -> str:
    if before is None or after is None:
        return "-"
    if kind == "pct":
        return f"{100 * (after - before):+.2f} pt"
    if kind == "ratio3":
        return f"{after - before:+.3f}"
    return f"x{after / before:.2f}" if before else "-"


def run_table(report: dict[str, Any]) -> Table:
    """A baseline-vs-compressed table of the metrics in a run report."""
    base, comp = report["baseline"], report["compressed"]
    model, data = report["model"], report["dataset"]
    title = (f"{report['strategy']} on {model['arch']} / {data['name']} "
             f"({data['split']} split, {data['samples']} images, {model['input_size']} px)")
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("baseline", justify="right")
    table.add_column("compressed", justify="right")
    table.add_column("change", justify="right")
    for key, label, kind in _ROWS:
        table.add_row(label, _fmt(base.get(key), kind), _fmt(comp.get(key), kind),
                      _change(base.get(key), comp.get(key), kind))
    return table
