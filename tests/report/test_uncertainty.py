"""Uncertainty of reports: binomial standard errors, runs over seeds, paired differences from a reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compressor.measure.accuracy import pack_correct
from compressor.report.uncertainty import (
    accuracy_text,
    binomial_se,
    differences,
    discordant_counts,
    mcnemar_p_value,
    mcnemar_test,
    paired_test,
    seed_groups,
)


def _row(pipeline: str, accuracy: float, seed: int, amount: float | None = 0.5, ft: float = 0,
         baseline_seed: int | None = None, samples: int = 10_000) -> dict:
    return {"pipeline": pipeline, "params": f"{pipeline}.amount={amount}", "finetune_epochs": ft, "arch": "resnet18",
            "dataset": "fashion-mnist", "input_size": 32, "amount": amount, "seed": seed,
            "baseline_seed": baseline_seed, "accuracy": accuracy, "samples": samples,
            "accuracy_before_recovery": None, "deployable_bytes": 10**6, "macs": 10**7, "deployed_latency_ms": 1.0}


def test_binomial_standard_error_of_one_run():
    assert binomial_se(0.9, 10_000) == pytest.approx(0.003)  # sqrt(0.9 * 0.1 / 10000)
    assert binomial_se(0.5, 100) == pytest.approx(0.05)
    assert binomial_se(0.9, None) is None
    assert accuracy_text(0.9171, binomial_se(0.9171, 10_000), "se", 1) == "91.71 ± 0.28"


def test_runs_of_one_setting_over_seeds_are_mean_and_sample_sd():
    rows = [_row("l1", a, seed) for seed, a in enumerate((0.90, 0.92, 0.94))] + [_row("obd", 0.95, 0)]
    l1, obd = seed_groups(rows)
    assert (l1.n, l1.spread_kind) == (3, "sd")
    assert l1.mean == pytest.approx(0.92) and l1.spread == pytest.approx(0.02)  # sample sd (n - 1)
    assert l1.seeds == [(None, 0), (None, 1), (None, 2)]
    assert accuracy_text(l1.mean, l1.spread, l1.spread_kind, l1.n) == "92.00 ± 2.00 (3)"
    assert (obd.n, obd.spread_kind) == (1, "se") and obd.spread == pytest.approx(math.sqrt(0.95 * 0.05 / 10_000))


def test_differences_pair_runs_by_seed_so_shared_seed_noise_cancels():
    # seed effects of ±3 points shared by both methods; obd is exactly 2 points better on every seed
    seeds = {0: 0.0, 1: 0.03, 2: -0.03}
    rows = [_row("l1", 0.80 + e, s) for s, e in seeds.items()] + [_row("obd", 0.82 + e, s) for s, e in seeds.items()]
    (diff,) = differences(rows, "l1")
    assert diff.pairs == 3 and diff.mean == pytest.approx(2.0) and diff.sd == pytest.approx(0.0, abs=1e-9)
    assert diff.verdict == "better"


def test_the_test_sets_noise_does_not_shrink_with_more_seeds():
    # 0.5 points on each of 8 seeds, all scored on the same 10,000 images: the seeds agree, but the test set's own
    # noise (two binomial SEs combined, 0.57 points, when no per-image record says better) is shared by every seed
    rows = [_row(name, start + 0.001 * s, s) for s in range(8) for name, start in (("l1", 0.800), ("obd", 0.805))]
    (diff,) = differences(rows, "l1")
    assert diff.pairs == 8 and diff.sd == pytest.approx(0.0, abs=1e-9) and diff.mean == pytest.approx(0.5)
    assert diff.se == pytest.approx(100 * math.hypot(binomial_se(0.8085, 10_000), binomial_se(0.8035, 10_000)))
    assert diff.verdict == "no difference"
    # the same gap made of 50 one-way flips per seed (per-image records): the paired test-set noise is small
    base = np.arange(10_000) % 5 != 0
    better = base.copy()
    better[np.flatnonzero(~base)[:50]] = True
    rows = [_with_correct(_row(name, 0, s), correct) for s in range(3) for name, correct in (("l1", base),
                                                                                           ("obd", better))]
    (paired,) = differences(rows, "l1")
    assert paired.pairs == 3 and paired.mean == pytest.approx(0.5)
    assert paired.se == pytest.approx(mcnemar_test(50, 0, 10_000).se) and paired.verdict == "better"


def test_differences_before_recovery_compare_what_the_strategies_alone_reached():
    rows = [{**_row("l1", 0.90, s), "accuracy_before_recovery": 0.20} for s in range(3)]
    rows += [{**_row("obd", 0.90, s), "accuracy_before_recovery": 0.80 + 0.01 * s} for s in range(3)]
    rows += [_row("woodfisher", 0.90, 0)]  # recorded nothing before recovery: left out of that comparison
    (after_obd, after_wf) = differences(rows, "l1")
    assert after_obd.verdict == after_wf.verdict == "no difference" and after_obd.mean == pytest.approx(0.0)
    (before,) = differences(rows, "l1", "accuracy_before_recovery")
    assert before.pipeline == "obd" and before.pairs == 3 and before.mean == pytest.approx(61.0)
    assert before.test.startswith("t (") and before.verdict == "better"


def test_a_difference_within_its_noise_is_no_difference():
    rows = [_row("l1", 0.800, 0), _row("obd", 0.803, 0)]  # one seed: ± hypot of two binomial SEs = 0.57 points
    (diff,) = differences(rows, "l1")
    assert diff.pairs == 1 and diff.sd is None
    assert diff.se == pytest.approx(100 * math.hypot(binomial_se(0.8, 10_000), binomial_se(0.803, 10_000)))
    assert diff.verdict == "no difference"
    worse = differences([_row("l1", 0.80, 0), _row("obd", 0.70, 0)], "l1")[0]
    assert worse.verdict == "worse" and worse.mean == pytest.approx(-10.0)


def test_differences_compare_only_the_same_amount_budget_and_seeds():
    rows = [_row("l1", 0.9, 0, amount=0.5), _row("l1", 0.8, 0, amount=0.7), _row("obd", 0.85, 0, amount=0.7),
            _row("obd", 0.85, 0, amount=0.7, ft=1), _row("obd", 0.5, 5, amount=0.5)]
    diffs = differences(rows, "l1")
    assert [(d.amount, d.finetune_epochs, round(d.mean, 6)) for d in diffs] == [(0.7, 0, 5.0)]  # no counterpart
    # for the fine-tuned cell or for seed 5: they are left out, not compared with the wrong run


def test_mcnemar_is_the_exact_two_sided_binomial_tail_of_the_discordant_images():
    assert mcnemar_p_value(10, 0) == pytest.approx(2 * 0.5 ** 10)  # ten flips, all one way
    assert mcnemar_p_value(0, 10) == mcnemar_p_value(10, 0)  # symmetric
    assert mcnemar_p_value(5, 5) == 1.0 and mcnemar_p_value(0, 0) == 1.0  # balanced flips, or none: no evidence
    assert mcnemar_p_value(1, 3) == pytest.approx(2 * (1 + 4) / 16)  # P(X <= 1) of Bin(4, 1/2), doubled
    assert discordant_counts([True, True, False, False], [True, False, True, True]) == (1, 2)
    with pytest.raises(ValueError, match="same images: 2 vs 1"):
        discordant_counts([True, False], [True])


def test_paired_t_uses_n_minus_one_degrees_of_freedom():
    # deltas 1, 2, 3: mean 2, sd 1, t = 2 sqrt(3) with 2 degrees of freedom; p = 1 - t / sqrt(t^2 + 2) (t with
    # 2 dof has the closed-form cdf 1/2 + t / (2 sqrt(t^2 + 2)))
    t = 2 * math.sqrt(3)
    tested = paired_test([1.0, 2.0, 3.0])
    assert (tested.test, tested.sd, tested.se) == ("t (2 dof)", 1.0, pytest.approx(1 / math.sqrt(3)))
    assert tested.p == pytest.approx(1 - t / math.sqrt(t * t + 2)) and tested.verdict == "no difference"
    # 2 seeds: the 95 % half-width is 12.71 SE, not the 1.96 SE a known error would give
    two = paired_test([1.0, 2.0])  # mean 1.5 = 3 SE: "better" under a 2-SE rule, p = 0.20 under t with 1 dof
    assert two.mean == pytest.approx(3 * two.se) and two.p == pytest.approx(0.2048, abs=1e-4)
    assert two.half_width == pytest.approx(12.706 * two.se, rel=1e-4) and two.verdict == "no difference"
    assert paired_test([1.0, 1.2, 1.1, 0.9, 1.0, 1.1]).verdict == "better"
    assert paired_test([0.5, 0.5]).p == 0.0 and paired_test([0.0, 0.0]).p == 1.0
    # one pair: the seed term is unknown; the fixed (binomial) term gives a z test, none without it
    one = paired_test([-1.0], fixed_se=0.4)
    assert (one.test, one.verdict) == ("z (binomial)", "worse") and one.half_width == pytest.approx(1.96 * 0.4, 1e-3)
    assert paired_test([-1.0]).verdict == "no difference" and paired_test([-1.0]).test == "none"
    # a known term that does not shrink with the seeds adds to the seed term; Welch–Satterthwaite degrees of
    # freedom: (se²)² / ((sd²/n)² / (n−1)) = 4 here, between n−1 = 1 and a normal test
    both = paired_test([1.0, 3.0], fixed_se=1.0)
    assert both.se == pytest.approx(math.sqrt(2 / 2 + 1)) and both.test == "t (4.0 dof, Welch–Satterthwaite)"
    assert both.half_width == pytest.approx(2.776 * both.se, rel=1e-3)  # t(0.975, 4 dof)
    known = paired_test([-1.0, -1.0, -1.0], fixed_se=0.4)  # no seed spread: only the known term, a z test
    assert (known.test, known.verdict) == ("z (binomial)", "worse")


def _with_correct(row: dict, correct: np.ndarray) -> dict:
    return {**row, "accuracy": float(correct.mean()), "samples": len(correct),
            "correct": pack_correct(np.eye(2)[correct.astype(int)], np.ones(len(correct), dtype=int))}


def test_one_pair_with_per_image_correctness_gets_mcnemar():
    # the same 0.3-point gap: spread over many disagreements it is noise, made of few one-way flips it is not
    base = np.arange(10_000) % 5 != 0  # 80 % right
    noisy = base.copy()
    noisy[np.flatnonzero(~base)[:215]] = True  # 215 images only the new run gets right ...
    noisy[np.flatnonzero(base)[:185]] = False  # ... 185 only the reference does: +0.3 points
    gap = 100 * (noisy.mean() - base.mean())
    (diff,) = differences([_with_correct(_row("l1", 0, 0), base), _with_correct(_row("obd", 0, 0), noisy)], "l1")
    assert discordant_counts(noisy, base) == (215, 185)
    assert diff.test == "McNemar (exact)" and diff.mean == pytest.approx(gap) == pytest.approx(0.3)
    assert diff.p == pytest.approx(mcnemar_p_value(215, 185)) and diff.verdict == "no difference"
    one_way = base.copy()
    one_way[np.flatnonzero(~base)[:30]] = True  # 30 images fixed, none broken: +0.3 points
    (sure,) = differences([_with_correct(_row("l1", 0, 0), base), _with_correct(_row("obd", 0, 0), one_way)], "l1")
    assert sure.mean == pytest.approx(0.3) and sure.verdict == "better" and sure.p == pytest.approx(2 * 0.5 ** 30)
    z = differences([_row("l1", 0.8, 0), _row("obd", 0.803, 0)], "l1")[0]
    assert z.test == "z (binomial)" and z.verdict == "no difference"  # the same gap without per-image records


def test_mcnemar_interval_is_that_of_paired_proportions():
    tested = mcnemar_test(30, 10, 1000)
    assert tested.mean == pytest.approx(2.0)
    assert tested.se == pytest.approx(100 * math.sqrt(40 - 20 ** 2 / 1000) / 1000)
    assert tested.half_width == pytest.approx(1.959964 * tested.se, rel=1e-5)
    assert mcnemar_test(5, 5, 100).p == 1.0 and mcnemar_test(5, 5, 100).verdict == "no difference"
