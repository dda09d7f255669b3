"""Trade-offs between accuracy and cost over many runs: Pareto fronts, budget picks and their plots."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from compressor.errors import CompressorError
from compressor.fileio import write_atomic

COSTS = {"size": ("deployable_bytes", "deployable file (MB)", 1e-6),
         "latency": ("deployed_latency_ms", "latency, batch 1 (ms)", 1.0)}


def deployed_latency_ms(row: dict[str, Any]) -> float | None:
    """The latency of the artifact one would deploy: ONNX Runtime (int8 file when quantized), else torch."""
    for key in ("latency_int8_ms", "latency_ort_ms", "latency_torch_ms"):
        if row.get(key) is not None:
            return row[key]
    return None


def typical_baseline(rows: list[dict[str, Any]], key: str) -> float | None:
    """The median over runs of a baseline figure each run measures again (its latency): one noisy run cannot move it."""
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else None


def pareto_front(rows: list[dict[str, Any]], cost: str) -> list[int]:
    """Indices of rows no other row dominates (as accurate at no more cost, better in one), cheapest first."""
    points = [(row[cost], row["accuracy"], i) for i, row in enumerate(rows) if row.get(cost) is not None]

    def dominated(c: float, a: float) -> bool:
        return any(oc <= c and oa >= a and (oc < c or oa > a) for oc, oa, _ in points)

    return [i for c, a, i in sorted(points) if not dominated(c, a)]


def pick_under_budget(rows: list[dict[str, Any]], *, max_size_mb: float | None = None,
                      max_latency_ms: float | None = None, min_accuracy: float | None = None) -> dict[str, Any]:
    """The best row within the budget, and a sentence saying why it won.

    Size and latency limits are constraints and accuracy the objective; with only an accuracy floor the smallest
    file wins (the fastest model breaks ties).
    """
    if max_size_mb is None and max_latency_ms is None and min_accuracy is None:
        raise CompressorError("a budget needs at least one of --max-size-mb, --max-latency-ms, --min-accuracy")
    limits = []
    if max_size_mb is not None:
        limits.append(f"file <= {max_size_mb:g} MB")
    if max_latency_ms is not None:
        limits.append(f"latency <= {max_latency_ms:g} ms")
    if min_accuracy is not None:
        limits.append(f"top-1 >= {100 * min_accuracy:.2f} %")

    def fits(row: dict[str, Any]) -> bool:
        latency = row.get("deployed_latency_ms")
        return ((max_size_mb is None or row["deployable_bytes"] <= max_size_mb * 1e6)
                and (max_latency_ms is None or (latency is not None and latency <= max_latency_ms))
                and (min_accuracy is None or row["accuracy"] >= min_accuracy))

    eligible = [row for row in rows if fits(row)]
    budget = ", ".join(limits)
    if not eligible:
        return {"budget": budget, "pick": None, "why": f"no run meets the budget ({budget}) among {len(rows)} runs"}
    if max_size_mb is None and max_latency_ms is None:
        ranked = sorted(eligible, key=lambda r: (r["deployable_bytes"], r.get("deployed_latency_ms") or 0.0))
        reason = "the smallest deployable file"
        detail = lambda r: f"{r['deployable_bytes'] / 1e6:.2f} MB"  # noqa: E731
    else:
        ranked = sorted(eligible, key=lambda r: (-r["accuracy"], r["deployable_bytes"]))
        reason = "the highest top-1 accuracy"
        detail = lambda r: f"{100 * r['accuracy']:.2f} %"  # noqa: E731
    pick = ranked[0]
    why = (f"{label(pick)}: {reason} ({detail(pick)}) among the {len(eligible)} of {len(rows)} runs that meet the "
           f"budget ({budget}); top-1 {100 * pick['accuracy']:.2f} %, {pick['deployable_bytes'] / 1e6:.2f} MB, "
           f"{_latency_text(pick)}")
    if len(ranked) > 1:
        why += f"; runner-up {label(ranked[1])} ({detail(ranked[1])})"
    return {"budget": budget, "pick": pick, "why": why}


def label(row: dict[str, Any]) -> str:
    """A short name for a row: pipeline, its parameters and fine-tuning."""
    tune = f" +ft{row['finetune_epochs']}" if row.get("finetune_epochs") else ""
    params = f" ({row['params']})" if row.get("params") else ""
    return f"{row['pipeline']}{params}{tune}"


def _latency_text(row: dict[str, Any]) -> str:
    latency = row.get("deployed_latency_ms")
    return "latency not measured" if latency is None else f"{latency:.2f} ms"


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


def _plain_log_axis(ax: Any) -> None:
    """Log x axis with plain numbers; minor ticks labelled only at 2x and 5x so they never crowd."""
    import math

    import matplotlib.ticker

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:.3g}"))

    def minor(value: float, _: int) -> str:
        leading = round(value / 10 ** math.floor(math.log10(value)), 6) if value > 0 else 0
        return f"{value:.3g}" if leading in (2, 5) else ""

    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor))
    ax.tick_params(axis="x", which="minor", labelsize=6)


def plot_tradeoffs(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Accuracy vs deployable size and vs latency (one panel each); Pareto points numbered, named in a key below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = rows[0]
    baseline_costs = {"size": base["baseline_deployable_bytes"],
                      "latency": typical_baseline(rows, "baseline_deployed_latency_ms")}
    fronts = {name: sorted(pareto_front(rows, key), key=lambda i, key=key: (rows[i][key], -rows[i]["accuracy"]))
              for name, (key, _, _) in COSTS.items()}
    key_lines = max(len(front) for front in fronts.values())
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2 + 0.11 * key_lines))
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
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return path
