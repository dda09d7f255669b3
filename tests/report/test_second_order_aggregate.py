"""scripts/second_order_aggregate.py (and the --methods parser of scripts/second_order_table.py) on synthetic cells."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import load_script

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


_load = load_script


agg = _load("second_order_aggregate")
plots = _load("second_order_plots")
N = 10_000


def cell(label: str, amount: float, seed: int, no: float, yes: float, **extra: object) -> dict:
    return {"label": label, "amount": amount, "seed": seed, "accuracy": {"no": no, "yes": yes},
            "test_samples": N, "strategy_seconds": 1.0, "peak_rss_gib": 1.0, **extra}


def test_aggregate_mean_std_n_in_percent():
    cells = [cell("l1", 0.9, s, no, yes) for s, (no, yes) in enumerate([(0.5, 0.80), (0.6, 0.82), (0.7, 0.84)])]
    rows = {(r["label"], r["amount"], r["bn"]): r for r in agg.aggregate(cells, ["l1"], [0.9])}
    no, yes = rows[("l1", 0.9, "no")], rows[("l1", 0.9, "yes")]
    assert no["n"] == yes["n"] == 3 and no["seeds"] == [0, 1, 2]
    assert math.isclose(no["mean_pct"], 60.0) and math.isclose(no["std_pct"], 10.0)
    assert math.isclose(yes["mean_pct"], 82.0) and math.isclose(yes["std_pct"], 2.0)


def test_paired_difference_is_by_seed_not_by_order():
    # the reference varies a lot across seeds; the method is exactly 1 point better on each seed
    base = [0.70, 0.90, 0.80]
    cells = [cell("l1", 0.9, s, b, b) for s, b in enumerate(base)]
    cells += [cell("fishleg", 0.9, s, b + 0.01, b + 0.01) for s, b in reversed(list(enumerate(base)))]
    d = agg.paired_difference(cells, "fishleg", "l1", 0.9, "yes")
    assert d["n"] == 3 and d["seeds"] == [0, 1, 2]
    assert math.isclose(d["mean_points"], 1.0) and math.isclose(d["std_points"], 0.0, abs_tol=1e-9)
    # no seed spread, but the test set's binomial noise stays: SE 0.56 points on 10 000 images near 80 %, so
    # 1 point is 1.78 SE, p = 0.075 under the normal test that a known SE gets
    assert math.isclose(d["se_points"], 100 * math.sqrt((0.81 * 0.19 + 0.80 * 0.20) / N))
    assert d["test"] == "z (binomial)" and d["p"] > 0.05 and d["verdict"] == "no difference"


def test_se_combines_seed_spread_and_binomial_terms():
    cells = [cell("a", 0.5, 0, 0.80, 0.80), cell("a", 0.5, 1, 0.84, 0.84),
             cell("b", 0.5, 0, 0.80, 0.80), cell("b", 0.5, 1, 0.80, 0.80)]
    d = agg.paired_difference(cells, "a", "b", 0.5, "no")
    seed_term = (4 / math.sqrt(2)) ** 2 / 2  # std of (0, 4) points over n = 2
    binomial = 100**2 * (0.82 * 0.18 / N + 0.80 * 0.20 / N)
    assert math.isclose(d["se_points"], math.sqrt(seed_term + binomial))


def test_verdict_threshold_through_paired_difference():
    # constant per-seed difference: SE is the binomial term only (a z test); differences just under and over the
    # two-sided 5 % point, 1.96 SE
    p = 0.5
    se = 100 * math.sqrt(2 * p * (1 - p) / N)  # both accuracies near 0.5
    for factor, expected in ((0.95, "no difference"), (1.05, "better")):
        gap = factor * 1.959964 * se / 100
        cells = [cell("m", 0.9, s, p + gap / 2, 0.0) for s in range(3)]
        cells += [cell("r", 0.9, s, p - gap / 2, 0.0) for s in range(3)]
        assert agg.paired_difference(cells, "m", "r", 0.9, "no")["verdict"] == expected
        cells = [dict(c, accuracy={"no": 1 - c["accuracy"]["no"], "yes": 0.0}) for c in cells]
        assert agg.paired_difference(cells, "m", "r", 0.9, "no")["verdict"] == expected.replace("better", "worse")


def test_two_seeds_are_not_a_known_error():
    # seed differences 1 and 2 points and a negligible test-set term: mean 1.5 is 3 SE, "better" for a rule that
    # takes the SE of two seeds as known (2 SE, or 1.96), but Student's t with (about) 1 degree of freedom: p ≈ 0.2
    cells = [cell("m", 0.9, 0, 0.51, 0.0), cell("m", 0.9, 1, 0.52, 0.0)]
    cells += [cell("r", 0.9, s, 0.50, 0.0) for s in (0, 1)]
    d = agg.paired_difference([dict(c, test_samples=10**9) for c in cells], "m", "r", 0.9, "no")
    assert math.isclose(d["mean_points"], 3 * d["se_points"], rel_tol=1e-3)
    assert d["test"].startswith("t (1.0 dof") and d["p"] > 0.2 and d["verdict"] == "no difference"


def test_missing_cells_pair_only_common_seeds_and_report_no_data():
    cells = [cell("l1", 0.9, 0, 0.5, 0.8), cell("l1", 0.9, 1, 0.5, 0.8), cell("obd", 0.9, 1, 0.6, 0.9),
             cell("obd", 0.9, 2, 0.6, 0.9)]
    d = agg.paired_difference(cells, "obd", "l1", 0.9, "yes")
    assert d["seeds"] == [1] and d["n"] == 1 and d["std_points"] is None
    assert math.isclose(d["mean_points"], 10.0)
    assert agg.paired_difference(cells, "obd", "l1", 0.95, "yes")["verdict"] == "no data"
    rows = {(r["label"], r["amount"], r["bn"]): r for r in agg.aggregate(cells, ["l1", "obd", "x"], [0.9])}
    assert rows[("obd", 0.9, "yes")]["n"] == 2 and rows[("obd", 0.9, "yes")]["std_pct"] == 0.0
    assert rows[("x", 0.9, "no")] == {"label": "x", "amount": 0.9, "bn": "no", "mean_pct": None, "std_pct": None,
                                      "n": 0, "seeds": []}
    table = agg.accuracy_table(agg.aggregate(cells, ["l1", "obd", "x"], [0.9]), ["l1", "obd", "x"], [0.9], "yes", 3)
    assert table[2:] == ["| l1 | 80.00 ± 0.00 (n=2) |", "| obd | 90.00 ± 0.00 (n=2) |", "| x | - |"]
    a_cell_without_bn = dict(cell("l1", 0.5, 0, 0.5, 0.8), accuracy={"no": 0.5})
    assert agg.by_seed([a_cell_without_bn], "l1", 0.5, "yes") == {}


def test_differences_skip_the_reference_and_cover_both_modes():
    cells = [cell(label, a, s, 0.5, 0.8) for label in ("l1", "obd") for a in (0.9, 0.95) for s in (0, 1)]
    rows = agg.differences(cells, ["l1", "obd"], "l1", [0.9, 0.95])
    assert {(r["label"], r["amount"], r["bn"]) for r in rows} == {("obd", a, bn) for a in (0.9, 0.95)
                                                                  for bn in ("no", "yes")}
    assert all(r["mean_points"] == 0 and r["verdict"] == "no difference" for r in rows)


def test_targets_from_data():
    specs = {"l1": {"strategy": "l1"}, "obd": {"strategy": "obd"}, "fishleg": {"strategy": "fishleg"},
             "lamp": {"strategy": "layer-sensitive"}}
    cells = []
    for s in range(3):
        for a in (0.9, 0.95):
            cells += [cell("l1", a, s, 0.30, 0.80 + 0.01 * s), cell("obd", a, s, 0.60, 0.84 + 0.01 * s),
                      cell("fishleg", a, s, 0.70, 0.86 + 0.01 * s, strategy_seconds=100.0, peak_rss_gib=2.0),
                      cell("lamp", a, s, 0.30, 0.70 if a == 0.95 else 0.80 + 0.01 * s)]
    result = {t["target"][:3]: t for t in agg.targets(cells, specs, [0.9, 0.95])}
    assert result["(1)"]["status"] == "met" and "[obd]" in result["(1)"]["target"]  # +2 points on every seed
    assert result["(5)"]["status"] == "no data"
    fits = {"fits": [{"layers_accepted": 18, "layers": 19}, {"layers_accepted": 10, "layers": 19}]}
    learned = [dict(c, fishleg=fits) if c["label"] == "fishleg" else c for c in cells]
    fifth = {t["target"][:3]: t for t in agg.targets(learned, specs, [0.9, 0.95])}["(5)"]
    assert fifth["status"] == "met" and "worst 95 %" in fifth["detail"] and "74 %" in fifth["detail"]
    fits["fits"][0]["layers_accepted"] = 17
    assert {t["target"][:3]: t for t in agg.targets(learned, specs, [0.9, 0.95])}["(5)"]["status"] == "not met"
    assert result["(2)"]["status"] == "met" and "+6.00" in result["(2)"]["detail"]
    assert result["(3)"]["status"] == "not met" and "[lamp]" in result["(3)"]["target"]
    assert result["(4)"]["status"] == "met"
    slow = [dict(c, strategy_seconds=1000.0) if c["label"] == "fishleg" else c for c in cells]
    assert {t["target"][:3]: t for t in agg.targets(slow, specs, [0.9, 0.95])}["(4)"]["status"] == "not met"
    missing = {t["target"][:3]: t["status"] for t in agg.targets(cells, specs, [0.9])}
    assert missing["(1)"] == missing["(2)"] == "no data"


def test_cell_name_keeps_the_amount_as_given():
    assert agg.cell_name("obd", 0.95, 1) == "obd-0.95-s1"
    assert agg.cell_name("l1", 0.9, 0) == "l1-0.9-s0"


def test_methods_syntax():
    table = _load("second_order_table")
    specs = table.parse_methods("l1,obd=obd:gradients=8;recomputations=2,lamp=layer-sensitive:ratios=0.5,0.9,0.98")
    assert specs == {"l1": {"strategy": "l1", "params": {}},
                     "obd": {"strategy": "obd", "params": {"gradients": "8", "recomputations": "2"}},
                     "lamp": {"strategy": "layer-sensitive", "params": {"ratios": "0.5,0.9,0.98"}}}
    for bad in ("l1,l1", "obd:gradients=8", "x=obd:amount=0.5", "x=obd:gradients"):
        with pytest.raises(ValueError):
            table.parse_methods(bad)


@pytest.mark.parametrize("collapsed", [0.10, 0.82], ids=["one-method-collapsed", "none-collapsed"])
def test_plots_write_pngs_with_collapsed_and_missing_cells(tmp_path: Path, collapsed: float):
    cells = [cell(label, a, s, 0.10 + 0.01 * s, collapsed if (label, a) == ("obd", 0.98) else 0.80 + 0.01 * s)
             for label in ("l1", "obd", "fishleg") for a in (0.9, 0.98) for s in (0, 1) if (label, s) != ("fishleg", 1)]
    labels, amounts = ["l1", "obd", "fishleg", "absent"], [0.9, 0.95, 0.98]
    plots.plot_differences(agg.differences(cells, labels, "l1", amounts), labels, amounts, "l1", 10.0,
                         tmp_path / "difference.png")
    plots.plot_accuracy(agg.aggregate(cells, labels, amounts), labels, amounts, 91.0, 10.0, tmp_path / "accuracy.png")
    for name in ("difference.png", "accuracy.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fishleg_probe_table_states_fit_decisions_and_accuracy():
    probe = {"fishleg_params": {"probes": "1"}, "environment": {"git_commit": "abc1234"},
             "fit": {"layers_accepted": 18, "layers": 19, "aux_loss_first": 1e13, "aux_loss_last": 1e12},
             "decisions": {"different": 14314, "pruned": 10599629, "different_fraction": 14314 / 10599629},
             "obd": {"test_accuracy_after_bn": 0.8708}, "fishleg": {"test_accuracy_after_bn": 0.8701, "seconds": 285.1}}
    row = agg.fishleg_probe_table({"fishleg-vs-obd.json": probe})[2]
    assert row == ("| `fishleg-vs-obd.json` | probes=1 (defaults of git abc1234) | 18 / 19 | 1e+13 → 1e+12 | "
                   "14,314 of 10,599,629 (0.14 %) | 87.08 / 87.01 | 285 |")


def test_allocation_table_lists_the_choice_per_seed():
    cells = [dict(cell("ls", 0.9, s, 0.5, 0.9), allocation={"chosen": pick}) for s, pick in ((1, "lamp"), (0, "blend"))]
    cells.append(cell("l1", 0.9, 0, 0.5, 0.9))
    assert agg.allocation_table(cells, ["l1", "ls"], [0.9, 0.95])[2:] == ["| ls | s0 blend, s1 lamp | - |"]
    assert agg.allocation_table(cells[2:], ["l1"], [0.9]) == []
