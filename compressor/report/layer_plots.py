"""Per-layer figures: the layer-sensitivity scan as a heatmap, what a run kept of each layer, and that for every
run of a report side by side. Heatmaps stay readable at DenseNet201's 200 layers where one line per layer does not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compressor.report.plots import _figure, _save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Layers = Sequence[Mapping[str, Any]]  # the `complexity.layers` list of a measurement


def plot_sensitivity(sensitivity: Mapping[str, Any], path: Path,
                     chosen: Mapping[str, float] | None = None) -> Path:
    """Write `sensitivity_figure` as a PNG; return its path."""
    return _save_png(sensitivity_figure(sensitivity, chosen), path)


def sensitivity_figure(sensitivity: Mapping[str, Any], chosen: Mapping[str, float] | None = None) -> Figure:
    """Heatmap of calibration accuracy drop (points) per layer (rows) and pruning ratio (columns); the ratio each
    layer was given, when known, in a panel beside it."""
    import numpy as np

    names = list(sensitivity["drops"])
    ratios = list(sensitivity["ratios"])
    drops = 100 * np.asarray([sensitivity["drops"][n] for n in names], dtype=float).reshape(len(names), len(ratios))
    fig = _figure((3.2 + 0.55 * len(ratios) + (1.0 if chosen else 0), 1.4 + 0.19 * len(names)))
    axes = fig.subplots(1, 2 if chosen else 1, squeeze=False, width_ratios=[len(ratios), 1] if chosen else None)[0]
    ax = axes[0]
    image = ax.imshow(drops, aspect="auto", cmap="magma_r", vmin=0,
                      vmax=max(1.0, float(drops.max())))
    ax.set_xticks(range(len(ratios)), [f"{r:g}" for r in ratios], fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=6 if len(names) > 30 else 7)
    ax.set_xlabel("fraction of the layer's weights pruned (L1)", fontsize=8)
    if len(names) * len(ratios) <= 400:
        for i in range(len(names)):
            for j in range(len(ratios)):
                ax.text(j, i, f"{drops[i, j]:.1f}", ha="center", va="center", fontsize=5,
                        color="white" if drops[i, j] > 0.6 * max(1.0, float(drops.max())) else "black")
    colourbar = fig.colorbar(image, ax=axes.tolist(), fraction=0.04, pad=0.02)
    colourbar.set_label("calibration accuracy drop (points)", fontsize=7)
    if chosen:
        side = axes[1]
        side.barh(range(len(names)), [chosen.get(n, 0.0) for n in names], color="tab:blue")
        side.set_ylim(ax.get_ylim())
        side.set_yticks([])
        side.set_xlim(0, 1)
        side.set_xlabel("ratio given", fontsize=7)
        side.tick_params(labelsize=6)
    fig.suptitle(f"layer sensitivity, {len(names)} layers (each pruned alone)", fontsize=9)
    _fit_left(fig, names, 6 if len(names) > 30 else 7)
    return fig


def _fit_left(fig: Any, labels: Sequence[str], fontsize: float) -> None:
    """Leave room at the left for the longest tick label (about 0.6 em per character)."""
    inches = 0.25 + 0.6 * fontsize / 72 * max((len(label) for label in labels), default=0)
    fig.subplots_adjust(left=min(0.6, inches / fig.get_figwidth()), right=0.9)


def kept_fractions(baseline: Layers, compressed: Layers) -> list[tuple[str, float, float]]:
    """(layer, fraction of the baseline layer's weights still present, fraction still non-zero) for every conv
    and linear layer of the baseline; a layer the compressed model no longer has keeps 0 of both."""
    after = {row["layer"]: row for row in compressed}
    out = []
    for row in baseline:
        kept = after.get(row["layer"])
        if kept is None:
            out.append((row["layer"], 0.0, 0.0))
        else:
            out.append((row["layer"], kept["params"] / row["params"], kept["nonzero"] / row["params"]))
    return out


def plot_layers(baseline: Layers, compressed: Layers, path: Path, title: str) -> Path:
    """Horizontal bars per layer: weights still present (width and removed blocks) and still non-zero (sparsity)."""
    fractions = kept_fractions(baseline, compressed)
    fig = _figure((6.5, 1.3 + 0.17 * len(fractions)))
    ax = fig.subplots()
    ys = range(len(fractions))
    ax.barh(ys, [100 * f[1] for f in fractions], color="tab:blue", alpha=0.35, label="present (width kept)")
    ax.barh(ys, [100 * f[2] for f in fractions], color="tab:blue", height=0.45, label="non-zero (after sparsity)")
    ax.set_yticks(list(ys), [f[0] for f in fractions], fontsize=6 if len(fractions) > 30 else 7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the baseline layer's weights")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save_png(fig, path)


def plot_layer_heatmap(runs: Sequence[tuple[str, Layers, Layers]], path: Path, title: str) -> Path:
    """Write `layer_heatmap_figure` as a PNG; return its path."""
    return _save_png(layer_heatmap_figure(runs, title), path)


def layer_heatmap_figure(runs: Sequence[tuple[str, Layers, Layers]], title: str) -> Figure:
    """Every run (rows, named) by layer (columns): % of the baseline layer's weights still non-zero."""
    import numpy as np

    layer_names = [row["layer"] for row in runs[0][1]]
    values = np.asarray([[nonzero for _, _, nonzero in kept_fractions(base, comp)] for _, base, comp in runs])
    longest = max(len(name) for name, _, _ in runs)
    fig = _figure((2.0 + 0.6 * 6 / 72 * longest + 0.16 * len(layer_names), 1.8 + 0.2 * len(runs)))
    ax = fig.subplots()
    image = ax.imshow(100 * values, aspect="auto", cmap="Blues", vmin=0, vmax=100)
    ax.set_yticks(range(len(runs)), [name for name, _, _ in runs], fontsize=6)
    step = max(1, len(layer_names) // 60)
    ax.set_xticks(range(0, len(layer_names), step), layer_names[::step], rotation=90, fontsize=5)
    colourbar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
    colourbar.set_label("% of the layer's weights non-zero", fontsize=7)
    ax.set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def draw_run_plots(report: Mapping[str, Any], report_path: Path) -> dict[str, str]:
    """Every per-run figure of a run report (its dict form) next to `report_path`: one sensitivity heatmap per step
    that scanned, and what each layer kept; returns the `plots` entries (name → path). Used when a run finishes
    and to redraw a committed run's figures from its JSON alone."""
    plots: dict[str, str] = {}
    for index, step in enumerate(report.get("steps") or [], 1):
        record = step.get("record") or {}
        if "sensitivity" in record:
            chosen = {name: info["chosen_ratio"] for name, info in (record.get("layers") or {}).items()
                      if "chosen_ratio" in info}
            plot = report_path.with_name(f"{report_path.stem}.step{index}-sensitivity.png")
            plots[f"step{index}_sensitivity"] = str(plot_sensitivity(record["sensitivity"], plot, chosen or None))
    base_layers, comp_layers = (((report.get(side) or {}).get("complexity") or {}).get("layers")
                                for side in ("baseline", "compressed"))
    if base_layers and comp_layers is not None:
        plot = report_path.with_name(f"{report_path.stem}.layers.png")
        plots["layers"] = str(plot_layers(base_layers, comp_layers, plot,
                                          f"{report.get('strategy')}: what each layer kept"))
    return plots
