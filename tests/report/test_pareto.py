"""Pareto fronts and budget picks: the defining properties on hand-made rows."""

from __future__ import annotations

import itertools

import pytest

from compressor.errors import CompressorError
from compressor.report.pareto import pareto_front, pick_under_budget
from compressor.report.plots import group_close


def _row(name: str, accuracy: float, mb: float, ms: float | None) -> dict:
    return {"pipeline": name, "params": "", "finetune_epochs": 0, "accuracy": accuracy,
            "deployable_bytes": int(mb * 1e6), "deployed_latency_ms": ms}


ROWS = [_row("a", 0.90, 10, 5), _row("b", 0.85, 5, 3), _row("c", 0.80, 6, 2), _row("d", 0.91, 40, 8),
        _row("e", 0.70, 2, 9), _row("f", 0.85, 5, 4), _row("g", 0.60, 3, None)]


@pytest.mark.parametrize("cost", ["deployable_bytes", "deployed_latency_ms"])
def test_front_is_exactly_the_non_dominated_rows(cost):
    front = set(pareto_front(ROWS, cost))
    for i, row in enumerate(ROWS):
        if row[cost] is None:
            assert i not in front
            continue
        dominated = any(other[cost] is not None and other[cost] <= row[cost] and other["accuracy"] >= row["accuracy"]
                        and (other[cost] < row[cost] or other["accuracy"] > row["accuracy"])
                        for j, other in enumerate(ROWS) if j != i)
        assert (i in front) != dominated, row["pipeline"]


def test_front_by_size_on_the_example():
    assert [ROWS[i]["pipeline"] for i in pareto_front(ROWS, "deployable_bytes")] == ["e", "b", "f", "a", "d"]


def test_budget_maximizes_accuracy_under_limits():
    pick = pick_under_budget(ROWS, max_size_mb=8)
    assert pick["pick"]["pipeline"] == "b" and "highest top-1" in pick["why"] and "runner-up" in pick["why"]
    assert pick_under_budget(ROWS, max_size_mb=8, max_latency_ms=2.5)["pick"]["pipeline"] == "c"
    for size, ms in itertools.product([3, 6, 12, 50], [2, 4, 9]):
        chosen = pick_under_budget(ROWS, max_size_mb=size, max_latency_ms=ms)["pick"]
        fits = [r for r in ROWS if r["deployable_bytes"] <= size * 1e6 and r["deployed_latency_ms"] is not None
                and r["deployed_latency_ms"] <= ms]
        assert (chosen is None) == (not fits)
        if fits:
            assert chosen["accuracy"] == max(r["accuracy"] for r in fits)


def test_accuracy_floor_alone_picks_the_smallest_file():
    assert pick_under_budget(ROWS, min_accuracy=0.84)["pick"]["pipeline"] in ("b", "f")
    assert pick_under_budget(ROWS, min_accuracy=0.84)["pick"]["deployed_latency_ms"] == 3  # faster of the tie
    empty = pick_under_budget(ROWS, min_accuracy=0.99)
    assert empty["pick"] is None and "no run meets the budget" in empty["why"]
    with pytest.raises(CompressorError, match="at least one of"):
        pick_under_budget(ROWS)


def _score(checkpoint: str, accuracy: float, mib: float, ms: float) -> dict:
    total = 0.3 * 44.7 / mib + 0.3 * 30 / ms + 0.4 * accuracy / 40
    return {"protocol": "openaimer", "checkpoint": checkpoint, "accuracy": accuracy, "model_size": mib,
            "latency": ms, "total_score": total, "images": 100, "latency_runs": 100,
            "baseline": {"size_mb": 44.7, "latency_ms": 30.0, "accuracy_pct": 40.0}}


def test_openaimer_section_ranks_by_score_and_names_each_model():
    from compressor.report.summary import openaimer_section

    rows = [{**row, "checkpoint": f"{row['pipeline']}.pt", "baseline_checkpoint": "base.pt"} for row in ROWS]
    scores = [_score("base.pt", 92.0, 42.0, 3.0), _score("a.pt", 90.0, 9.5, 2.0), _score("e.pt", 9.0, 0.3, 1.0)]
    text = openaimer_section(rows, scores)
    table = [line for line in text.splitlines() if line.startswith("| ") and "score" not in line]
    assert [line.split(" | ")[0] for line in table] == ["| e", "| a", "| dense baseline"]
    assert table[0].endswith("| yes |") and table[2].endswith("| - |")
    assert "top score goes to **e** (9.00 %)" in text and "dense baseline (92.00 %)" in text
    with pytest.raises(CompressorError, match="score of other.pt matches no run"):
        openaimer_section(rows, [_score("other.pt", 50.0, 1.0, 1.0)])


def test_close_points_share_one_label_and_every_point_is_labelled_once():
    points = [(0.10, 0.90), (0.11, 0.90), (0.12, 0.91), (0.50, 0.50), (0.90, 0.10), (0.505, 0.49)]
    groups = group_close(points, radius=0.025)
    assert groups == [[0, 1, 2], [3, 5], [4]]
    assert sorted(i for group in groups for i in group) == list(range(len(points)))
    for a, b in itertools.combinations(groups, 2):
        assert all(abs(points[i][0] - points[j][0]) > 0.025 or abs(points[i][1] - points[j][1]) > 0.025
                   for i in a for j in b)


def test_plotted_baseline_latency_is_the_median_over_runs_like_the_table(tmp_path, monkeypatch):
    import matplotlib.axes

    from compressor.report.tradeoff_plot import plot_tradeoffs

    rows = [{**row, "baseline_accuracy": 0.92, "baseline_deployable_bytes": 50_000_000,
             "baseline_deployed_latency_ms": ms} for row, ms in zip(ROWS, [9.0, 4.0, 4.2, 3.9, 4.1, 4.0, 4.3])]
    stars = []
    scatter = matplotlib.axes.Axes.scatter

    def spy(self, x, y, *args, **kwargs):
        if kwargs.get("marker") == "*":
            stars.append(x)
        return scatter(self, x, y, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "scatter", spy)
    plot_tradeoffs(rows, tmp_path / "t.png", "t")
    assert stars == [50.0, 4.1]  # MB; the median latency, not the first run's 9.0 ms
    assert (tmp_path / "t.png").stat().st_size > 0
