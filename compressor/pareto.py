"""Trade-offs between accuracy and cost over many runs: Pareto fronts, budget picks and their plots."""

from __future__ import annotations

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


def plot_tradeoffs(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Accuracy vs deployable size and vs latency (one panel each), Pareto fronts drawn and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    base = rows[0]
    baseline_costs = {"size": base["baseline_deployable_bytes"], "latency": base.get("baseline_deployed_latency_ms")}
    for ax, (name, (key, axis_label, scale)) in zip(axes, COSTS.items()):
        front = set(pareto_front(rows, key))
        for i, row in enumerate(rows):
            if row.get(key) is None:
                continue
            marker = "o" if row.get("finetune_epochs") else "x"
            ax.scatter(row[key] * scale, 100 * row["accuracy"], marker=marker, s=36 if i in front else 20,
                       color="tab:red" if i in front else "tab:gray", zorder=3)
            if i in front:
                ax.annotate(label(row), (row[key] * scale, 100 * row["accuracy"]), fontsize=6,
                            xytext=(4, 2), textcoords="offset points")
        ordered = sorted((rows[i][key] * scale, 100 * rows[i]["accuracy"]) for i in front)
        if ordered:
            ax.step(*zip(*ordered), where="post", color="tab:red", linewidth=1, label="Pareto front")
        if baseline_costs[name] is not None:
            ax.scatter(baseline_costs[name] * scale, 100 * base["baseline_accuracy"], marker="*", s=120,
                       color="black", label="baseline", zorder=4)
        ax.set_xscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:.3g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize=6)
        ax.set_xlabel(axis_label + " (log)")
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
