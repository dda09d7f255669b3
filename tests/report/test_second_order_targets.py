"""scripts/second_order_targets.py: the second-order reports' targets and allocations, from report rows."""

from __future__ import annotations

from conftest import load_script

targets_script = load_script("second_order_targets")
N = 10_000


def _row(pipeline: str, amount: float, seed: int, after: float, before: float, params: str = "",
         seconds: float = 10.0, peak: int | None = 2**30) -> dict:
    return {"pipeline": pipeline, "params": f"{pipeline}.amount={amount}" + (f" {params}" if params else ""),
            "finetune_epochs": 0, "arch": "resnet18", "dataset": "fashion-mnist", "input_size": 32, "amount": amount,
            "seed": seed, "baseline_seed": 0, "accuracy": after, "accuracy_before_recovery": before, "samples": N,
            "bn_recalibrated": True, "strategy_seconds": seconds, "peak_rss_bytes": peak}


def _rows() -> list[dict]:
    rows = []
    for seed in range(3):
        noise = 0.002 * seed
        rows += [_row("l1", 0.95, seed, 0.80 + noise, 0.10),
                 _row("obd", 0.95, seed, 0.86 + noise, 0.70),
                 _row("obd", 0.95, seed, 0.90 + noise, 0.75, "obd.fisher=sampled"),
                 _row("fishleg", 0.95, seed, 0.88 + noise, 0.76, seconds=1000.0),
                 _row("layer-sensitive", 0.95, seed, 0.80 + noise, 0.05)]
    return rows


def test_targets_follow_the_paired_differences():
    diag = {"fishleg_fits": [{"amount": 0.95, "seed": s, "fits": [{"layers": 10, "layers_accepted": 9 - s},
                                                                  {"layers": 10, "layers_accepted": 10}]}
                             for s in range(3)]}
    found = targets_script.targets(_rows(), diag)
    statuses, details = [status for _, status, _ in found], [detail for _, _, detail in found]
    # fishleg beats plain obd (+2 points on every seed) but not obd on the sampled Fisher (−2 points)
    assert statuses[:2] == ["met", "not met"]
    assert statuses[2] == "met"  # fishleg − l1 = +8 points after recalibration, ≥ 5
    assert statuses[3] == "not met"  # layer-sensitive is 5 points worse than l1 before recalibration
    assert statuses[4] == "not met"  # 1000 s of strategy time is over 15 min
    assert statuses[5] == "not met"  # the third run's first fit kept 7 of 10 layers (< 90 %)
    assert "worst 70 % of layers (3 runs); all 6 fits and refits: 90 % of layer fits kept" in details[5]
    assert "+2.00 points" in details[0] and "-2.00 points" in details[1] and "obd.fisher=sampled" in found[1][0]


def test_render_writes_the_targets_and_the_allocations():
    diag = {"layer_sensitive_allocations": [{"amount": 0.95, "seed": s, "chosen": c}
                                            for s, c in enumerate(("scan", "lamp", "scan"))]}
    fragments = targets_script.render({"rows": _rows()}, diag)
    assert fragments["targets.md"].startswith("- (1) fishleg better than obd beyond noise at 0.95")
    assert "| seed: allocation | s0 scan, s1 lamp, s2 scan |" in fragments["allocation.md"]
    assert "no data" in targets_script.render({"rows": [r for r in _rows() if r["pipeline"] != "fishleg"]},
                                              {})["targets.md"]
