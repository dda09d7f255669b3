"""The visual vocabulary shared by the report plots: a colour per strategy, a marker per recovery budget, hollow
markers for int8 artifacts, and number labels placed where they overlap nothing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.text import Annotation

BUDGET_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


def strategy_colours(pipelines: Iterable[str]) -> dict[str, Any]:
    """A distinct colour per pipeline name (sorted, so a strategy keeps its colour between plots of one report)."""
    from matplotlib import colormaps

    names = sorted(set(pipelines))
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def budget_markers(budgets: Iterable[float]) -> dict[float, str]:
    """A marker per fine-tuning budget, the smallest budget (usually one-shot) first."""
    return {budget: BUDGET_MARKERS[i % len(BUDGET_MARKERS)] for i, budget in enumerate(sorted(set(budgets)))}


def budget_label(budget: float) -> str:
    return "one-shot" if budget == 0 else f"fine-tuned {budget:g} epoch{'s' if budget != 1 else ''}"


def is_int8(pipeline: str) -> bool:
    """Whether the deployed artifact of a pipeline is int8 (its last step quantizes)."""
    return pipeline.split("+")[-1] == "int8"


def marker_style(colour: Any, int8: bool) -> dict[str, Any]:
    """Filled markers for fp32 artifacts, hollow ones (coloured edge) for int8."""
    if int8:
        return {"facecolors": "none", "edgecolors": [colour], "linewidths": 1.4}
    return {"color": colour, "edgecolors": "black", "linewidths": 0.4}


# offsets in points tried, nearest first, for a label beside its point
_OFFSETS = [(dx * r, dy * r) for r in (1, 2, 3, 4, 5) for dx, dy in
            ((4, 4), (4, -10), (-12, 4), (-12, -10), (6, 0), (-14, 0), (0, 8), (0, -14))]


def place_labels(ax: Axes, anchors: Sequence[tuple[float, float]], texts: Sequence[str],
                 avoid: Sequence[tuple[float, float]] = (), **style: Any) -> list[Annotation]:
    """Annotate each anchor (data coordinates) with its text, at the nearest offset whose box overlaps no earlier
    label and no point of `avoid` (data coordinates); a label moved far gets a thin leader line."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    marker_boxes = []
    for x, y in avoid:
        px, py = ax.transData.transform((x, y))
        marker_boxes.append((px - 4, py - 4, px + 4, py + 4))
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for anchor, text in zip(anchors, texts):
        chosen = None
        for dx, dy in _OFFSETS:
            note = ax.annotate(text, anchor, xytext=(dx, dy), textcoords="offset points", zorder=6, **style)
            box = note.get_window_extent(renderer)
            rect = (box.x0 - 1, box.y0 - 1, box.x1 + 1, box.y1 + 1)
            if not any(_overlap(rect, other) for other in (*placed, *marker_boxes)):
                chosen = (note, rect, abs(dx) + abs(dy) > 20)
                break
            note.remove()
        if chosen is None:  # crowded beyond every offset: the farthest one, with a leader line
            note = ax.annotate(text, anchor, xytext=_OFFSETS[-1], textcoords="offset points", zorder=6, **style)
            box = note.get_window_extent(renderer)
            chosen = (note, (box.x0, box.y0, box.x1, box.y1), True)
        note, rect, far = chosen
        if far:
            note.arrow_patch = None
            note.set_annotation_clip(False)
            ax.annotate("", anchor, xytext=note.xyann, textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"}, zorder=5)
        placed.append(rect)
        out.append(note)
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def boxes_overlap(boxes: Sequence[Any]) -> list[tuple[int, int]]:
    """Pairs of indices of matplotlib `Bbox`es that overlap (for tests and checks of placed labels)."""
    rects = [(b.x0, b.y0, b.x1, b.y1) for b in boxes]
    return [(i, j) for i in range(len(rects)) for j in range(i + 1, len(rects)) if _overlap(rects[i], rects[j])]
