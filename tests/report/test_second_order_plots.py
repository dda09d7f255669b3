"""scripts/second_order_plots.py on the committed second-order reports: every method's point is on its axis (or
marked collapsed with its value), each difference panel is scaled to its own data, the legend names every method."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
REPORTS = [ROOT / "reports" / name / "results.json"
           for name in ("second-order-fashion-mnist", "second-order-densenet201-supcon")]
agg = load_script("second_order_aggregate")
plots = load_script("second_order_plots")


@pytest.fixture(scope="module", params=REPORTS, ids=lambda p: p.parent.name)
def report(request) -> dict:
    return json.loads(request.param.read_text())


def _points(ax) -> list[tuple[float, float]]:
    """(x, y) of every errorbar data marker on `ax`."""
    return [(float(x), float(y)) for line in ax.lines if line.get_marker() == "o"
            for x, y in zip(line.get_xdata(), line.get_ydata())]


def _collapsed_texts(ax) -> list[str]:
    return [text.get_text() for text in ax.texts]


def _legend_names(fig) -> set[str]:
    (legend,) = fig.legends
    return {text.get_text() for text in legend.get_texts()}


def test_accuracy_figure_shows_every_method_and_keeps_the_axis_on_working_ones(report):
    labels, amounts, chance = list(report["methods"]), report["amounts"], 100 / report["dense"]["num_classes"]
    fig = plots.accuracy_figure(report["aggregates"], labels, amounts, 100 * report["dense"]["accuracy"], chance)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == [agg.BN_TEXT[bn] for bn in agg.BN_MODES]
    for ax, bn in zip(axes, agg.BN_MODES):
        rows = [r for r in report["aggregates"] if r["bn"] == bn and r["mean_pct"] is not None]
        working = sorted(round(r["mean_pct"], 6) for r in rows if r["mean_pct"] >= agg.COLLAPSED * chance)
        collapsed = sorted(f"{r['mean_pct']:.1f} %" for r in rows if r["mean_pct"] < agg.COLLAPSED * chance)
        assert sorted(round(y, 6) for _, y in _points(ax)) == working
        assert sorted(_collapsed_texts(ax)) == collapsed
        bottom, top = ax.get_ylim()
        assert all(bottom <= y <= top for y in working)
        if working:  # the axis spans the working methods, not chance to dense
            assert bottom >= min(working) - 0.25 * (top - bottom) - 1
        xs = [x for x, _ in _points(ax)]
        assert len(set(round(x, 6) for x in xs)) == len(xs) or len(labels) == 1  # methods side by side, not stacked
    assert set(labels) <= _legend_names(fig)


def test_difference_figure_panel_per_amount_and_bn_mode_on_its_own_scale(report):
    labels, amounts, chance = list(report["methods"]), report["amounts"], 100 / report["dense"]["num_classes"]
    reference = report["reference"]
    fig = plots.difference_figure(report["differences"], labels, amounts, reference, chance)
    axes = fig.get_axes()
    assert len(axes) == len(agg.BN_MODES) * len(amounts)
    for index, ax in enumerate(axes):
        bn, amount = agg.BN_MODES[index // len(amounts)], amounts[index % len(amounts)]
        assert ax.get_title() == f"{100 * amount:g} % sparsity, {agg.BN_TEXT[bn]}"
        rows = [d for d in report["differences"] if d["bn"] == bn and agg._same(d["amount"], amount)
                and d["mean_points"] is not None]
        working = [d for d in rows if d["accuracy_pct"] >= agg.COLLAPSED * chance]
        assert sorted(round(y, 6) for _, y in _points(ax)) == sorted(round(d["mean_points"], 6) for d in working)
        assert sorted(_collapsed_texts(ax)) == sorted(f"{d['mean_points']:+.1f}" for d in rows if d not in working)
        bottom, top = ax.get_ylim()
        low = min([0.0, *(d["mean_points"] - d["half_width_points"] for d in working)])
        high = max([0.0, *(d["mean_points"] + d["half_width_points"] for d in working)])
        assert bottom <= low and high <= top  # every 95 % interval fits
        assert top - bottom <= 1.5 * (high - low) + 0.5  # and the panel is scaled to them, not to other panels
    assert set(labels) - {reference} == _legend_names(fig)


def test_figures_write_pngs(tmp_path: Path):
    report = json.loads(REPORTS[0].read_text())
    labels, amounts = list(report["methods"]), report["amounts"]
    plots.plot_differences(report["differences"], labels, amounts, report["reference"], 10.0, tmp_path / "d.png")
    plots.plot_accuracy(report["aggregates"], labels, amounts, 92.0, 10.0, tmp_path / "a.png")
    for name in ("d.png", "a.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
