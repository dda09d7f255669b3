"""Plot plumbing (a figure on its own canvas, atomic PNG writes, log axes, label grouping) and the SupCon plots;
the report's figures are in `tradeoff_plot`, `layer_plots` and `difference_plot`, all written as PNG files atomically.

Figures are built with matplotlib's object-oriented API (`Figure` on an Agg canvas), never through pyplot: drawing
a plot does not select, switch or even look up matplotlib's backend, so a notebook that imports `compressor` keeps
its own. matplotlib itself is imported on the first plot, not when `compressor` is imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compressor._util.fileio import write_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure



def _figure(figsize: tuple[float, float]) -> Figure:
    """A figure on its own Agg canvas: no pyplot, no figure manager, no backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Figure, path: Path) -> Path:
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))


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
