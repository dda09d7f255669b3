"""The two figures of a second-order report (scripts/second_order_table.py): accuracy and difference to the reference.

Both are pure functions of the aggregate and difference rows of scripts/second_order_aggregate.py (results.json's
`aggregates` and `differences`), so a committed report's figures can be redrawn and checked from its JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from second_order_aggregate import BN_MODES, BN_TEXT, COLLAPSED, _same

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _offsets(count: int, width: float = 0.7) -> list[float]:
    """x offsets that spread `count` methods over `width` around each amount, so error bars do not overlap."""
    if count <= 1:
        return [0.0] * count
    return [-width / 2 + width * i / (count - 1) for i in range(count)]


def _amount_index(amounts: Sequence[float], amount: float) -> int:
    return next(i for i, a in enumerate(amounts) if _same(a, amount))


def _mark_collapsed(ax: Any, x: float, value: float, colour: Any, text: str) -> None:
    """A ▼ at the bottom edge of `ax` for a value the axis leaves out, with the value written beside it."""
    bottom, top = ax.get_ylim()
    y = bottom + 0.04 * (top - bottom)
    ax.plot([x], [y], marker="v", color=colour, linestyle="none")
    ax.annotate(text.format(value), (x, y), fontsize=7, color=colour, xytext=(0, 6), textcoords="offset points",
                rotation=90, ha="center", va="bottom")  # upright, so neighbours' values never overlap


def difference_figure(diffs: Sequence[Mapping[str, Any]], labels: Sequence[str], amounts: Sequence[float],
                      reference: str, chance: float) -> Figure:
    """Each method minus the reference, one panel per (BN mode, amount) on its own scale; bars = 95 % intervals.

    A bar that crosses zero is a difference within noise (the noise rule). Own scales keep a 0.3-point difference
    at 90 % readable next to 40 points at 98 %. A method that collapsed (mean accuracy below COLLAPSED × chance)
    is drawn as ▼ at the bottom edge with its value written, so it does not stretch the panel.
    """
    from matplotlib.lines import Line2D

    from compressor.report.plots import _figure

    others = [label for label in labels if label != reference]
    colours = {label: f"C{index % 10}" for index, label in enumerate(others)}
    fig = _figure((max(9.0, 3.2 * len(amounts)), 7.0))
    grid = fig.subplots(len(BN_MODES), len(amounts), squeeze=False)
    for row, bn in enumerate(BN_MODES):
        for col, amount in enumerate(amounts):
            ax = grid[row][col]
            mine = {d["label"]: d for d in diffs if d["bn"] == bn and _same(d["amount"], amount)
                    and d["mean_points"] is not None and d["label"] in colours}
            shown = {label: d for label, d in mine.items() if d["accuracy_pct"] >= COLLAPSED * chance}
            spans = [(d["mean_points"] - d["half_width_points"], d["mean_points"] + d["half_width_points"])
                     for d in shown.values()]
            low, high = min([0.0, *(a for a, _ in spans)]), max([0.0, *(b for _, b in spans)])
            pad = max(0.1, 0.08 * (high - low))
            ax.set_ylim(low - pad - (0.2 * (high - low + 2 * pad) if len(shown) < len(mine) else 0.0), high + pad)
            for x, label in enumerate(others):
                if label in shown:
                    d = shown[label]
                    ax.errorbar([x], [d["mean_points"]], yerr=[d["half_width_points"]], fmt="o",
                                color=colours[label], capsize=3)
                elif label in mine:
                    _mark_collapsed(ax, x, mine[label]["mean_points"], colours[label], "{:+.1f}")
            ax.axhline(0.0, color="black", linestyle="--", linewidth=1)
            ax.set_xlim(-0.6, len(others) - 0.4)
            ax.set_xticks(range(len(others)), others, rotation=35, ha="right", fontsize=8)
            ax.set_title(f"{100 * amount:g} % sparsity, {BN_TEXT[bn]}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"top-1 minus {reference} (points)", fontsize=9)
    handles = [Line2D([], [], marker="o", linestyle="none", color=colours[label], label=label) for label in others]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(others), 6), fontsize=8, frameon=False)
    fig.text(0.5, 0.005, "bars: 95 % confidence intervals (noise rule); a bar across the dashed zero line is no "
             "difference; ▼ collapsed method, value written", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def plot_differences(diffs: Sequence[Mapping[str, Any]], labels: Sequence[str], amounts: Sequence[float],
                     reference: str, chance: float, path: Path) -> Path:
    """difference_figure written to `path` as PNG."""
    from compressor.report.plots import _save_png

    return _save_png(difference_figure(diffs, labels, amounts, reference, chance), path)


def accuracy_figure(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], amounts: Sequence[float],
                    dense_pct: float, chance: float) -> Figure:
    """Test accuracy mean ± std against sparsity, one panel per BN mode, methods side by side at each amount.

    The axis spans the methods that work; a collapsed one (mean below COLLAPSED × chance) is a ▼ at the bottom edge
    with its value written.
    """
    from matplotlib.lines import Line2D

    from compressor.report.plots import _figure

    colours = {label: f"C{index % 10}" for index, label in enumerate(labels)}
    offsets = dict(zip(labels, _offsets(len(labels))))
    fig = _figure((12, 5))
    axes = fig.subplots(1, len(BN_MODES), squeeze=False)[0]
    for ax, bn in zip(axes, BN_MODES):
        mine = [r for r in rows if r["bn"] == bn and r["mean_pct"] is not None and r["label"] in colours]
        shown = [r for r in mine if r["mean_pct"] >= COLLAPSED * chance]
        low = min([dense_pct, *(r["mean_pct"] - (r["std_pct"] or 0.0) for r in shown)])
        high = max([dense_pct, *(r["mean_pct"] + (r["std_pct"] or 0.0) for r in shown)])
        pad = max(0.5, 0.06 * (high - low))
        ax.set_ylim(low - pad - (0.12 * (high - low + 2 * pad) if len(shown) < len(mine) else 0.0), high + pad)
        for label in labels:
            points = sorted(((_amount_index(amounts, r["amount"]) + offsets[label], r) for r in shown
                             if r["label"] == label), key=lambda p: p[0])
            if points:
                ax.errorbar([x for x, _ in points], [r["mean_pct"] for _, r in points],
                            yerr=[r["std_pct"] or 0.0 for _, r in points], fmt="o-", linewidth=0.8,
                            color=colours[label], capsize=3)
            for r in mine:
                if r["label"] == label and r["mean_pct"] < COLLAPSED * chance:
                    _mark_collapsed(ax, _amount_index(amounts, r["amount"]) + offsets[label], r["mean_pct"],
                                    colours[label], "{:.1f} %")
        ax.axhline(dense_pct, color="gray", linestyle=":")
        ax.set_xlim(-0.6, len(amounts) - 0.4)
        ax.set_xticks(range(len(amounts)), [f"{100 * a:g} %" for a in amounts])
        ax.set_xlabel("sparsity (fraction of eligible weights pruned)")
        ax.set_title(BN_TEXT[bn])
    axes[0].set_ylabel("test top-1 (%), mean ± std over seeds")
    handles = [Line2D([], [], marker="o", color=colours[label], label=label) for label in labels]
    handles.append(Line2D([], [], color="gray", linestyle=":", label=f"dense {dense_pct:.2f} %"))
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 7), fontsize=8, frameon=False)
    fig.text(0.5, 0.005, f"▼ collapsed (below {COLLAPSED:g} × chance = {COLLAPSED * chance:g} %), value written",
             ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.93))
    return fig


def plot_accuracy(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], amounts: Sequence[float],
                  dense_pct: float, chance: float, path: Path) -> Path:
    """accuracy_figure written to `path` as PNG."""
    from compressor.report.plots import _save_png

    return _save_png(accuracy_figure(rows, labels, amounts, dense_pct, chance), path)
