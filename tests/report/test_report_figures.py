"""The report figures drawn from committed report data: the axes hold the data, the legend names every strategy,
labels never overlap, below-floor runs sit in their band, layer charts show what each run kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script

from compressor.report.layer_plots import kept_fractions, layer_heatmap_figure, sensitivity_figure
from compressor.report.style import boxes_overlap
from compressor.report.tradeoff_plot import PANELS, accuracy_floor, tradeoff_figure

ROOT = Path(__file__).resolve().parents[2]
SWEEP = ROOT / "reports" / "resnet18-fashion-mnist" / "results.json"
STRATEGY_RUNS = ROOT / "reports" / "resnet18-fashion-mnist-strategies" / "runs"


@pytest.fixture(scope="module")
def sweep_rows() -> list[dict]:
    return json.loads(SWEEP.read_text())["rows"]


def _offsets(ax) -> list[tuple[float, float]]:
    return [(round(float(x), 6), round(float(y), 6)) for collection in ax.collections
            for x, y in collection.get_offsets()]


def test_tradeoff_axes_hold_every_run_and_collapsed_runs_sit_in_the_band(sweep_rows):
    fig = tradeoff_figure(sweep_rows, "sweep")
    floor = accuracy_floor(sweep_rows)
    below = [r for r in sweep_rows if r["accuracy"] < floor]
    assert below, "the committed sweep has collapsed runs; the band must be exercised"
    axes = fig.get_axes()
    panels = [name for name, spec in PANELS.items() if any(r.get(spec[0]) is not None for r in sweep_rows)]
    assert len(axes) == 2 * len(panels)  # a main axis and a band per panel
    for col, name in enumerate(panels):
        key, _, _, scale = PANELS[name]
        main, band = axes[2 * col], axes[2 * col + 1]
        expected_main = sorted((round(r[key] * scale, 6), round(100 * r["accuracy"], 6)) for r in sweep_rows
                               if r["accuracy"] >= floor and r.get(key) is not None)
        expected_band = sorted((round(r[key] * scale, 6), round(100 * r["accuracy"], 6)) for r in below
                               if r.get(key) is not None)
        plotted = sorted(_offsets(main))
        assert all(p in plotted for p in expected_main)  # plus the baseline star
        assert sorted(_offsets(band)) == expected_band
        (x0, x1), (y0, y1) = main.get_xlim(), main.get_ylim()
        assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in expected_main)
        assert y0 >= 100 * floor - 1  # the axis shows the interesting range, not 10 % to 92 %
        assert all(band.get_ylim()[0] <= y <= band.get_ylim()[1] for _, y in expected_band)


def test_tradeoff_legend_names_every_strategy_and_budget(sweep_rows):
    fig = tradeoff_figure(sweep_rows, "sweep")
    (legend,) = fig.legends
    names = {text.get_text() for text in legend.get_texts()}
    assert {r["pipeline"] for r in sweep_rows} <= names
    assert {"one-shot", "fine-tuned 0.25 epochs", "hollow: int8 artifact", "dense baseline"} <= names


def test_tradeoff_number_labels_never_overlap(sweep_rows):
    fig = tradeoff_figure(sweep_rows, "sweep")
    renderer = fig.canvas.get_renderer()
    for ax in fig.get_axes()[0::2]:
        labels = [t for t in ax.texts if t.get_text() and t.get_text()[0].isdigit()]
        assert labels, "the Pareto points are numbered"
        assert boxes_overlap([t.get_window_extent(renderer) for t in labels]) == []


def test_sensitivity_heatmap_has_one_row_per_layer_and_the_scan_values():
    record = json.loads((STRATEGY_RUNS / "layer-sensitive-ft0.json").read_text())["steps"][0]["record"]
    sensitivity = record["sensitivity"]
    chosen = {name: info["chosen_ratio"] for name, info in record["layers"].items()}
    fig = sensitivity_figure(sensitivity, chosen)
    heat = fig.get_axes()[0]
    (image,) = heat.get_images()
    values = image.get_array()
    assert values.shape == (len(sensitivity["drops"]), len(sensitivity["ratios"]))
    first = next(iter(sensitivity["drops"]))
    assert values[0].tolist() == pytest.approx([100 * d for d in sensitivity["drops"][first]])
    assert [t.get_text() for t in heat.get_yticklabels()] == list(sensitivity["drops"])
    widths = [bar.get_width() for bar in fig.get_axes()[1].patches]
    assert widths == pytest.approx([chosen.get(name, 0.0) for name in sensitivity["drops"]])


def test_layer_heatmap_shows_what_each_run_kept():
    runs = []
    for name in ("l1-ft0", "channels-ft0", "blocks-ft0"):
        report = json.loads((STRATEGY_RUNS / f"{name}.json").read_text())
        runs.append((name, report["baseline"]["complexity"]["layers"], report["compressed"]["complexity"]["layers"]))
    fig = layer_heatmap_figure(runs, "kept")
    values = fig.get_axes()[0].get_images()[0].get_array()
    assert values.shape == (3, len(runs[0][1]))
    l1, channels, blocks = values
    total = sum(row["params"] for row in runs[0][1])
    kept = sum(row["params"] * v / 100 for row, v in zip(runs[0][1], l1))
    assert kept / total == pytest.approx(0.5, abs=0.01)  # global L1 at 0.5 keeps half the conv/linear weights
    assert 0 in blocks and 100 in blocks  # removed blocks keep nothing, the others everything
    assert all(v < 100 for v in channels[1:-1])  # channel pruning narrows the inner layers
    removed = [name for name, present, _ in kept_fractions(runs[2][1], runs[2][2]) if present == 0]
    assert removed and all(name.startswith("layer") for name in removed)


def test_crowded_labels_move_apart_and_the_check_sees_overlaps(monkeypatch):
    import compressor.report.style as style
    from compressor.report.plots import _figure

    def crowded(offsets):
        monkeypatch.setattr(style, "_OFFSETS", offsets)
        fig = _figure((4, 3))
        ax = fig.subplots()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        anchors = [(0.3 + 0.01 * i, 0.5) for i in range(8)]  # 3 px apart: one offset for all would stack them
        notes = style.place_labels(ax, anchors, [f"{i}0-{i}9" for i in range(8)], fontsize=7)
        return style.boxes_overlap([n.get_window_extent(fig.canvas.get_renderer()) for n in notes])

    assert crowded(style._OFFSETS) == []
    assert crowded([(4, 4)]) != []  # without the search, the same labels overlap: the check can fail


def test_redraw_run_plots_draws_every_figure_from_a_committed_run_and_records_them(tmp_path):
    redraw = load_script("redraw_run_plots")
    run = tmp_path / "layer-sensitive-ft0.json"
    original = json.loads((STRATEGY_RUNS / run.name).read_text())
    run.write_text(json.dumps({**original, "plots": {}}))
    plots = redraw.redraw(run)
    assert plots == {"step1_sensitivity": str(tmp_path / "layer-sensitive-ft0.step1-sensitivity.png"),
                     "layers": str(tmp_path / "layer-sensitive-ft0.layers.png")}
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots.values())
    rewritten = json.loads(run.read_text())
    assert rewritten == {**original, "plots": plots}  # only the plots entry changes
    with pytest.raises(ValueError, match="not a `compressor run` report"):
        (tmp_path / "other.json").write_text('{"schema": "compressor.sweep-cell/1"}')
        redraw.redraw(tmp_path / "other.json")


def test_the_difference_figure_names_chains_and_methods_with_other_parameters(tmp_path):
    from compressor.report.difference_plot import _method_names, plot_differences
    from compressor.report.uncertainty import Difference

    def diff(pipeline: str, params: str, amount: float | None) -> Difference:
        return Difference(pipeline, params, amount, 0.25, 1, 1.0, None, 0.5, "z (binomial)", 0.04, 1.0)

    diffs = [diff("obd", "obd.amount=0.5", 0.5), diff("obd", "obd.amount=0.5 obd.fisher=sampled", 0.5),
             diff("blocks+l1+int8", "blocks.amount=0.25 l1.amount=0.5", 0.5), diff("nm", "", None)]
    name = _method_names(diffs)
    assert [name(d) for d in diffs] == ["obd", "obd (obd.fisher=sampled)", "blocks+l1+int8", "nm"]
    assert (tmp_path / "d.png").exists() is False
    plot_differences(diffs, "l1", tmp_path / "d.png", "title")  # a chain among the methods used to crash it
    assert (tmp_path / "d.png").stat().st_size > 0
