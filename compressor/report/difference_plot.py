"""The difference figure of a report: each method's accuracy minus a reference method's at the same amount and
recovery budget, with error bars, so a difference smaller than its noise is seen as one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from compressor.report.by_amount import params_without_amount
from compressor.report.plots import _figure, _save_png
from compressor.report.style import budget_label, budget_markers, strategy_colours
from compressor.report.uncertainty import Difference


def plot_differences(diffs: Sequence[Difference], reference: str, path: Path, title: str) -> Path:
    """Points of accuracy difference (method − reference) against amount, one colour per method, one marker per
    budget; bars are the 95 % confidence intervals the verdicts rest on (paired t over seeds; one pair: McNemar or
    z)."""
    from matplotlib.ticker import FuncFormatter

    method_of = _method_names(diffs)
    colours = strategy_colours(method_of(d) for d in diffs)
    markers = budget_markers(d.finetune_epochs for d in diffs)
    fig = _figure((9.5, 4.6))
    ax = fig.subplots()
    amounts = sorted({d.amount for d in diffs if d.amount is not None})
    width = 0.6 * min((b - a for a, b in zip(amounts, amounts[1:])), default=0.1)
    methods = sorted({(method_of(d), d.finetune_epochs) for d in diffs})
    for index, (pipeline, budget) in enumerate(methods):
        chosen = [d for d in diffs if (method_of(d), d.finetune_epochs) == (pipeline, budget) and d.amount is not None]
        shift = width * ((index + 0.5) / len(methods) - 0.5)  # side by side, never on top of each other
        ax.errorbar([d.amount + shift for d in chosen], [d.mean for d in chosen],
                    yerr=[d.half_width or 0.0 for d in chosen], fmt=markers[budget], color=colours[pipeline],
                    capsize=3, markersize=5, linewidth=1, label=f"{pipeline}, {budget_label(budget)}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_yscale("symlog", linthresh=2.0)  # linear within ±2 points, where the close calls are; collapses compressed
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.margins(y=0.08)
    if amounts:
        ax.set_xlim(amounts[0] - width, amounts[-1] + width)
    ax.set_xticks(amounts, [f"{a:g}" for a in amounts])
    ax.set_xlabel("amount")
    ax.set_ylabel(f"top-1 minus {reference} (points; linear within ±2, log beyond)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # never over a point
    ax.set_title(title + "\nbars: 95 % confidence intervals (paired t over seeds; one seed: McNemar or binomial z)",
                 fontsize=9)
    fig.tight_layout()
    return _save_png(fig, path)


def _method_names(diffs: Sequence[Difference]) -> Callable[[Difference], str]:
    """A difference's line in the figure: its pipeline, with its parameters other than the amount where the pipeline
    runs with more than one set of them (`obd (obd.fisher=sampled)` beside `obd`)."""

    def others(diff: Difference) -> str:  # a chain (blocks+l1+int8) has no single amount: it is named as it is
        return "" if "+" in diff.pipeline else params_without_amount(diff.pipeline, diff.params)

    variants: dict[str, set[str]] = {}
    for diff in diffs:
        variants.setdefault(diff.pipeline, set()).add(others(diff))
    return lambda d: f"{d.pipeline} ({others(d)})" if len(variants[d.pipeline]) > 1 and others(d) else d.pipeline
