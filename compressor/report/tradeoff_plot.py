"""The trade-off figure of a report: accuracy against deployable size, deployed latency and MACs, one panel each.

Each point is a run: colour = strategy, marker = recovery budget, hollow = int8 artifact. Runs far below the
baseline (collapsed, near chance) go to a thin band under each panel with its own scale, so the main axis shows
the range where the runs worth choosing differ. Pareto points are numbered (labels never overlap) and named in a
key under each panel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compressor.report.pareto import label, pareto_front, typical_baseline
from compressor.report.plots import _figure, _plain_log_axis, _save_png, group_close
from compressor.report.style import budget_label, budget_markers, is_int8, marker_style, place_labels, strategy_colours

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Row = Mapping[str, Any]

PANELS = {"size": ("deployable_bytes", "baseline_deployable_bytes", "deployable file (MB)", 1e-6),
          "latency": ("deployed_latency_ms", "baseline_deployed_latency_ms", "latency of the deployed artifact, "
                                                                             "batch 1 (ms)", 1.0),
          "macs": ("macs", "baseline_macs", "MACs (millions, dense)", 1e-6)}
FLOOR_SPAN = 0.15  # the main axis reaches this far (fraction) below the baseline's accuracy, or to chance


def accuracy_floor(rows: Sequence[Row]) -> float:
    """Accuracy below which a run is drawn in the band: 15 points under the baseline (never below chance),
    rounded down to 5 points."""
    base = rows[0]["baseline_accuracy"]
    chance = 1 / rows[0]["num_classes"] if rows[0].get("num_classes") else 0.0
    floor = max(chance, base - FLOOR_SPAN)
    return math.floor(20 * floor) / 20


def _baseline_cost(rows: Sequence[Row], key: str, base_key: str) -> float | None:
    if key == "deployed_latency_ms":
        return typical_baseline(rows, base_key)
    return rows[0].get(base_key)


def plot_tradeoffs(rows: Sequence[Row], path: Path, title: str) -> Path:
    """Write the trade-off figure (see the module docstring) as a PNG; return its path."""
    return _save_png(tradeoff_figure(rows, title), path)


def tradeoff_figure(rows: Sequence[Row], title: str) -> Figure:
    """The trade-off figure: panels (top row: the main axes, then the band axes when runs fall below the floor),
    a legend naming every strategy and budget, and number labels placed without overlap."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    colours = strategy_colours(r["pipeline"] for r in rows)
    markers = budget_markers(r["finetune_epochs"] for r in rows)
    floor = accuracy_floor(rows)
    below = [i for i, r in enumerate(rows) if r["accuracy"] < floor]
    panels = {name: spec for name, spec in PANELS.items() if any(r.get(spec[0]) is not None for r in rows)}
    fronts = {name: sorted(pareto_front(rows, key), key=lambda i, key=key: (rows[i][key], -rows[i]["accuracy"]))
              for name, (key, *_) in panels.items()}
    key_lines = max((len(front) for front in fronts.values()), default=0)
    heights = [5, 1.1] if below else [5]
    legend_rows = math.ceil((len(colours) + len(markers) + 3) / 7)
    fig = _figure((5.2 * len(panels), 1.4 + sum(heights) * 0.8 + 0.1 * key_lines + 0.2 * legend_rows))
    grid = fig.add_gridspec(len(heights), len(panels), height_ratios=heights, hspace=0.08)
    layout = []
    for col, (name, (key, base_key, axis_label, scale)) in enumerate(panels.items()):
        ax = fig.add_subplot(grid[0, col])
        band = fig.add_subplot(grid[1, col], sharex=ax) if below else None
        _plain_log_axis(ax)
        for i, row in enumerate(rows):
            if row.get(key) is None:
                continue
            target = band if (band is not None and i in below) else ax
            target.scatter(row[key] * scale, 100 * row["accuracy"], marker=markers[row["finetune_epochs"]],
                           s=30, zorder=3, **marker_style(colours[row["pipeline"]], is_int8(row["pipeline"])))
        front = [i for i in fronts[name] if i not in below]
        points = [(rows[i][key] * scale, 100 * rows[i]["accuracy"]) for i in front]
        if points:
            ax.step(*zip(*points), where="post", color="0.35", linewidth=0.8, zorder=2)
        base_cost = _baseline_cost(rows, key, base_key)
        star = []
        if base_cost is not None:
            star = [(base_cost * scale, 100 * rows[0]["baseline_accuracy"])]
            ax.scatter(*star[0], marker="*", s=160, color="black", zorder=4)
        shown = [100 * r["accuracy"] for i, r in enumerate(rows) if i not in below and r.get(key) is not None]
        top = max(100 * rows[0]["baseline_accuracy"], *shown)
        ax.set_ylim(min(shown, default=top) - 0.6, top + 0.6)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(alpha=0.3)
        if band is not None:
            band.set_ylim(0, 100 * floor + 4)  # a run just under the floor is drawn whole
            if rows[0].get("num_classes"):
                band.axhline(100 / rows[0]["num_classes"], color="0.5", linestyle=":", linewidth=0.8)
            band.set_ylabel(f"< {100 * floor:g} %", fontsize=7)
            band.tick_params(axis="y", labelsize=6)
            band.grid(alpha=0.3)
            ax.tick_params(axis="x", which="both", labelbottom=False)
            band.set_xlabel(axis_label + " (log)")
        else:
            ax.set_xlabel(axis_label + " (log)")
        ax.set_title(f"accuracy vs {name}", fontsize=9)
        layout.append((ax, band or ax, front, points, star, [(rows[i][key] * scale, 100 * rows[i]["accuracy"])
                                                            for i, r in enumerate(rows)
                                                            if r.get(key) is not None and i not in below]))
    handles: list[Any] = [Patch(color=colours[p], label=p) for p in colours]
    handles += [Line2D([], [], marker=m, linestyle="", color="0.4", label=budget_label(b)) for b, m in markers.items()]
    handles += [Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="0.2",
                       label="hollow: int8 artifact"),
                Line2D([], [], marker="*", linestyle="", color="black", markersize=11, label="dense baseline"),
                Line2D([], [], color="0.35", linewidth=0.8, label="Pareto front (numbered)")]
    note = (f"  ·  {len(below)} runs below {100 * floor:g} % in the lower band (dotted: chance)" if below else "")
    fig.suptitle(title + note, fontsize=10)
    columns = 7
    fig.legend(handles=handles, loc="lower center", ncol=columns, fontsize=7, frameon=False)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.06, right=0.99, top=1 - 0.6 / height, wspace=0.22,
                        bottom=(0.55 + 0.1 * key_lines + 0.2 * legend_rows) / height)
    names = key_names(rows)
    for ax, bottom_ax, front, points, star, others in layout:
        groups = group_close(_axes_points(ax, points), radius=0.02)
        place_labels(ax, [points[g[0]] for g in groups], [_numbers(g) for g in groups], avoid=[*others, *star],
                     fontsize=7, color="0.1")
        bottom_ax.annotate("\n".join(f"{n:>2}  {names[i]}" for n, i in enumerate(front, 1)), (0, 0),
                           xycoords=("axes fraction", bottom_ax.xaxis.label), xytext=(0, -4),
                           textcoords="offset points", fontsize=6, va="top", family="monospace")
    return fig


def key_names(rows: Sequence[Row]) -> list[str]:
    """Short names for the key (`channels 0.9 +ft0.25`); the full label where the short one is ambiguous."""
    short = [_short(r) for r in rows]
    full = [label(r) for r in rows]
    unique = {name for name in short if len({f for s, f in zip(short, full) if s == name}) == 1}
    return [s if s in unique else f for s, f in zip(short, full)]


def _short(row: Row) -> str:
    amount = "" if row.get("amount") is None else f" {row['amount']:g}"
    tune = f" +ft{row['finetune_epochs']:g}" if row.get("finetune_epochs") else ""
    return f"{row['pipeline']}{amount}{tune}"


def _axes_points(ax: Any, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if not points:
        return []
    return [tuple(p) for p in ax.transAxes.inverted().transform(ax.transData.transform(points))]


def _numbers(group: list[int]) -> str:
    numbers = [i + 1 for i in group]
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ",".join(map(str, numbers))
