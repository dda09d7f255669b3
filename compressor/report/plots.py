"""Every plot the package draws, written as PNG files atomically.

Figures are built with matplotlib's object-oriented API (`Figure` on an Agg canvas), never through pyplot: drawing
a plot does not select, switch or even look up matplotlib's backend, so a notebook that imports `compressor` keeps
its own. matplotlib itself is imported on the first plot, not when `compressor` is imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compressor.fileio import write_atomic
from compressor.report.pareto import label, pareto_front, typical_baseline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Row = Mapping[str, Any]

COSTS = {"size": ("deployable_bytes", "deployable file (MB)", 1e-6),
         "latency": ("deployed_latency_ms", "latency, batch 1 (ms)", 1.0)}


def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas: no pyplot, no figure manager, no backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Figure, path: Path) -> Path:
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


def plot_sensitivity(sensitivity: Mapping[str, Any], path: Path) -> Path:
    """Write a PNG of calibration accuracy drop against pruning ratio, one line per layer."""
    fig = _figure((8, 5))
    ax = fig.subplots()
    for name, drops in sensitivity["drops"].items():
        ax.plot([0.0, *sensitivity["ratios"]], [0.0, *[100 * d for d in drops]], marker="o", label=name)
    ax.set_xlabel("fraction of the layer's weights pruned (L1)")
    ax.set_ylabel("calibration accuracy drop (points)")
    ax.set_title("layer sensitivity")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return _save_png(fig, path)


def group_close(points: list[tuple[float, float]], radius: float) -> list[list[int]]:
    """Indices of points (taken in order) grouped with any member of a group within radius, so labels never stack."""
    groups: list[list[int]] = []
    for i, (x, y) in enumerate(points):
        for group in groups:
            if any(abs(x - points[j][0]) <= radius and abs(y - points[j][1]) <= radius for j in group):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def _numbers(group: list[int]) -> str:
    numbers = [i + 1 for i in group]
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ",".join(map(str, numbers))


def _plain_log_axis(ax: Axes) -> None:
    """Log x axis with plain numbers; minor ticks labelled only at 2x and 5x so they never crowd."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))

    def minor(value: float, _: int) -> str:
        leading = round(value / 10 ** math.floor(math.log10(value)), 6) if value > 0 else 0
        return f"{value:.3g}" if leading in (2, 5) else ""

    ax.xaxis.set_minor_formatter(FuncFormatter(minor))
    ax.tick_params(axis="x", which="minor", labelsize=6)


def plot_tradeoffs(rows: Sequence[Row], path: Path, title: str) -> Path:
    """Accuracy vs deployable size and vs latency (one panel each); Pareto points numbered, named in a key below."""
    base = rows[0]
    baseline_costs = {"size": base["baseline_deployable_bytes"],
                      "latency": typical_baseline(rows, "baseline_deployed_latency_ms")}
    fronts = {name: sorted(pareto_front(rows, key), key=lambda i, key=key: (rows[i][key], -rows[i]["accuracy"]))
              for name, (key, _, _) in COSTS.items()}
    key_lines = max(len(front) for front in fronts.values())
    fig = _figure((13, 5.2 + 0.11 * key_lines))
    axes = fig.subplots(1, 2)
    for ax, (name, (key, axis_label, scale)) in zip(axes, COSTS.items()):
        _plain_log_axis(ax)
        front = fronts[name]
        for i, row in enumerate(rows):
            if row.get(key) is None or i in front:
                continue
            ax.scatter(row[key] * scale, 100 * row["accuracy"], marker="o" if row.get("finetune_epochs") else "x",
                       s=20, color="tab:gray", zorder=3)
        points = [(rows[i][key] * scale, 100 * rows[i]["accuracy"]) for i in front]
        for i, point in zip(front, points):
            ax.scatter(*point, marker="o" if rows[i].get("finetune_epochs") else "x", s=36, color="tab:red", zorder=3)
        if points:
            ax.step(*zip(*points), where="post", color="tab:red", linewidth=1, label="Pareto front")
        if baseline_costs[name] is not None:
            ax.scatter(baseline_costs[name] * scale, 100 * base["baseline_accuracy"], marker="*", s=120,
                       color="black", label="baseline", zorder=4)
        ax.autoscale_view()
        in_axes = ax.transAxes.inverted().transform(ax.transData.transform(points)) if points else []
        for group in group_close([tuple(p) for p in in_axes], radius=0.025):
            ax.annotate(_numbers(group), points[group[0]], fontsize=7, color="tab:red", xytext=(3, 3), zorder=5,
                        textcoords="offset points")
        ax.set_xlabel(axis_label + " (log)")
        ax.annotate("\n".join(f"{n:>2}  {label(rows[i])}" for n, i in enumerate(front, 1)), (0, 0),
                    xycoords=("axes fraction", ax.xaxis.label), xytext=(0, -4), textcoords="offset points",
                    fontsize=6, va="top", family="monospace")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_title("accuracy vs size (x one-shot, o fine-tuned)", fontsize=9)
    axes[1].set_title("accuracy vs latency of the deployed artifact", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_confusion(result: Mapping[str, Any], path: Path, title: str) -> Path:
    """Row-normalized confusion matrix (`confusion_matrix` and `classes` of a metrics dict) as a PNG."""
    import numpy as np

    matrix = np.asarray(result["confusion_matrix"], dtype=float)
    rates = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1)
    classes = list(result["classes"])
    fig = _figure((1.0 + 0.55 * len(classes), 0.8 + 0.5 * len(classes)))
    ax = fig.add_subplot()
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if matrix[i, j]:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_tsne(panels: Sequence[tuple[str, Any]], labels: Any, classes: Sequence[str], path: Path) -> Path:
    """Side-by-side 2-D embeddings (one panel per title), coloured by class, as a PNG."""
    from matplotlib import colormaps

    fig = _figure((5.2 * len(panels), 5.0))
    axes = fig.subplots(1, len(panels), squeeze=False)
    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for ax, (title, points) in zip(axes[0], panels):
        for index, name in enumerate(classes):
            chosen = labels == index
            ax.scatter(points[chosen, 0], points[chosen, 1], s=3, color=cmap(index % cmap.N), label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=4, fontsize=8, frameon=False)
    fig.tight_layout()
    return _save_png(fig, path)
