"""Tables by amount: one line per one-strategy setting, one column per (amount, fine-tuning budget), for the
accuracy curve (after or before recovery) and for what each strategy cost (seconds, peak memory)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from compressor.report.numbers import percent

Row = Mapping[str, Any]


def amount_setting(row: Row) -> tuple[str, str] | None:
    """(pipeline, its parameters other than the amount) of a one-strategy run that takes an amount, else None."""
    if row.get("amount") is None or "+" in row["pipeline"]:
        return None
    return row["pipeline"], params_without_amount(row["pipeline"], row.get("params"))


def params_without_amount(pipeline: str, params: str | None) -> str:
    """A run's `-p` parameters (`obd.amount=0.5 obd.fisher=sampled`) less the pipeline's own amount."""
    amount_key = f"{pipeline}.amount="
    return " ".join(p for p in (params or "").split() if not p.startswith(amount_key))


def _by_amount(rows: Sequence[Row], value: Callable[[Row], float | None]
               ) -> tuple[list[tuple[float, float]], dict[tuple[str, str], dict[tuple[float, float], list[float]]]]:
    """The (amount, fine-tuning) columns, and each one-strategy setting's values of `value(row)` in each column."""
    cells: dict[tuple[str, str], dict[tuple[float, float], list[float]]] = {}
    for row in rows:
        setting, measured = amount_setting(row), value(row)
        if setting and measured is not None:
            cells.setdefault(setting, {}).setdefault((row["amount"], row["finetune_epochs"]), []).append(measured)
    return sorted({column for by_column in cells.values() for column in by_column}), cells


def _column_header(columns: Sequence[tuple[float, float]]) -> list[str]:
    header = [f"{100 * amount:g} %" + (f" ft{epochs:g}" if epochs else " one-shot") for amount, epochs in columns]
    return ["| strategy | " + " | ".join(header) + " |", "|---|" + "---:|" * len(columns)]


def accuracy_by_amount(rows: Sequence[Row], metric: str = "accuracy") -> str:
    """Top-1 of every one-strategy run that takes an amount, one line per strategy and one column per (amount,
    fine-tuning budget): the report's accuracy curve as a table (a mean with its run count where seeds repeat).
    `metric` `accuracy_before_recovery`: the strategies alone, before BatchNorm recalibration and fine-tuning."""
    columns, cells = _by_amount(rows, lambda row: row.get(metric))
    what = "Top-1 %" if metric == "accuracy" else "Top-1 % before recovery (the strategies alone)"
    lines = [f"{what} by amount and fine-tuning (dense {percent(rows[0]['baseline_accuracy'])} %; a mean over runs "
             "shows their count in brackets):\n", *_column_header(columns)]
    for (pipeline, params), by_column in sorted(cells.items()):
        values = []
        for column in columns:
            runs = by_column.get(column, [])
            mean = f"{100 * statistics.fmean(runs):.2f}" if runs else "-"
            values.append(mean if len(runs) <= 1 else f"{mean} ({len(runs)})")
        lines.append(f"| {pipeline}{f' ({params})' if params else ''} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def cost_table(rows: Sequence[Row]) -> str:
    """What each strategy needed, by amount: strategy seconds (mean over runs) and the peak resident memory of the
    run's process through strategies and recovery (max over runs)."""
    columns, seconds = _by_amount(rows, lambda row: row["strategy_seconds"])
    _, memory = _by_amount(rows, lambda row: row.get("peak_rss_bytes"))
    lines = ["Strategy seconds (mean over runs) and peak resident memory of the run's process through its strategies "
             "and recovery (max over runs), by amount and fine-tuning:\n", *_column_header(columns)]
    for setting, by_column in sorted(seconds.items()):
        values = []
        for column in columns:
            spent, peak = by_column.get(column), memory.get(setting, {}).get(column)
            text = "-" if not spent else f"{statistics.fmean(spent):.1f} s"
            values.append(text + (f", {max(peak) / 2 ** 30:.2f} GiB" if peak else ""))
        pipeline, params = setting
        lines.append(f"| {pipeline}{f' ({params})' if params else ''} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"
