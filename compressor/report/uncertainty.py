"""How sure a report can be: runs of one setting over seeds as mean ± sd, one run with its binomial standard error,
and differences from a reference method with the noise they carry, judged by tests that respect the sample size:
Student's t for differences paired by seed (`paired_test`: the seeds' spread on n−1 degrees of freedom, plus the
test set's own noise, which all seeds share, `test_set_se`), and for one pair of runs
McNemar's exact test on the test images they disagree on (`mcnemar_test`, from the per-image correctness run
reports record as `correct`; rows written before that field existed get a z test on the two binomial errors).

Rows are `RunRow.as_dict()` mappings. A *setting* is everything a run was asked to do except its seeds; runs of
one setting differ only in the seed of the strategies (calibration, fine-tuning) and of the baseline's training.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats

Row = Mapping[str, Any]

SETTING = ("pipeline", "params", "finetune_epochs", "bn_recalibrated", "arch", "dataset", "input_size")
# a method's counterpart in a reference: same amount, recovery budget, model, data and resolution; the help the
# runs got (BatchNorm recalibration) must match too, or the difference is not a comparison of methods
COUNTERPART = ("amount", "finetune_epochs", "arch", "dataset", "input_size")
HELP = ("bn_recalibrated",)
NOT_COMPARABLE = "not comparable: recovery differs"


def binomial_se(accuracy: float, samples: int | None) -> float | None:
    """Standard error of an accuracy measured on `samples` independent images: sqrt(p(1-p)/n)."""
    if not samples:
        return None
    return math.sqrt(accuracy * (1 - accuracy) / samples)


ALPHA = 0.05  # a difference is called better/worse when its two-sided p-value is below this


@dataclass(frozen=True)
class PairedTest:
    """A mean paired difference tested against zero: its standard error, the test used, its p-value."""

    mean: float
    sd: float | None  # sample sd of the paired differences (two or more pairs)
    se: float | None  # standard error of `mean`
    test: str  # "t (n−1 dof)", "z (binomial)" or "none"
    p: float | None
    half_width: float | None  # 95 % confidence half-width of `mean`: t(n−1) or z quantile × se

    @property
    def verdict(self) -> str:
        """`better` / `worse` when p < ALPHA, else `no difference` (also when no test was possible)."""
        if self.p is None or self.p >= ALPHA:
            return "no difference"
        return "better" if self.mean > 0 else "worse"


def paired_test(deltas: Sequence[float], fixed_se: float = 0.0) -> PairedTest:
    """Test the mean of paired differences (one per seed) against zero, with the seed count's own uncertainty.

    With n ≥ 2 pairs: se = sqrt(sd²/n + fixed_se²) and Student's t, so 2-3 seeds are not treated as a known error.
    fixed_se is a known term that does not shrink with n (e.g. the test set's binomial noise); 0 gives the plain
    paired t-test on n−1 degrees of freedom, otherwise the Welch–Satterthwaite degrees of freedom of the sum (n−1
    when the seed term dominates, towards a normal test when the known term does). With one pair the seed term is
    unknown: se = fixed_se and a normal (z) test, no test at all when fixed_se is 0."""
    n = len(deltas)
    if n == 0:
        raise ValueError("a paired test needs at least one difference")
    mean = statistics.fmean(deltas)
    if n >= 2:
        sd = statistics.stdev(deltas)
        seed_var = sd ** 2 / n
        se = math.sqrt(seed_var + fixed_se ** 2)
        if se == 0:
            return PairedTest(mean, sd, se, f"t ({n - 1} dof)", 1.0 if mean == 0 else 0.0, 0.0)
        if seed_var == 0:  # only the known term is left: a normal test
            return _z_test(mean, sd, se)
        dof = (n - 1) * (se ** 2 / seed_var) ** 2  # Welch–Satterthwaite; exactly n−1 when fixed_se is 0
        test = f"t ({n - 1} dof)" if fixed_se == 0 else f"t ({dof:.{1 if dof < 10 else 0}f} dof, Welch–Satterthwaite)"
        return PairedTest(mean, sd, se, test, float(2 * stats.t.sf(abs(mean) / se, dof)), t_half_width(se, dof))
    return _z_test(mean, None, fixed_se) if fixed_se > 0 else PairedTest(mean, None, None, "none", None, None)


def _z_test(mean: float, sd: float | None, se: float) -> PairedTest:
    """A difference whose standard error is known (binomial): the normal test and its 95 % half-width."""
    p = float(2 * stats.norm.sf(abs(mean) / se))
    return PairedTest(mean, sd, se, "z (binomial)", p, float(stats.norm.ppf(1 - ALPHA / 2)) * se)


def t_half_width(se: float, dof: float) -> float:
    """Half-width of the 95 % confidence interval of a mean with standard error `se`: t(dof) quantile × se."""
    return float(stats.t.ppf(1 - ALPHA / 2, dof)) * se


def mcnemar_p_value(only_first_correct: int, only_second_correct: int) -> float:
    """Two-sided exact McNemar p-value of two models scored on the same images.

    The counts are the discordant images (one model right, the other wrong); under "equally accurate" each discordant
    image is a fair coin, so the p-value is the two-sided binomial tail of the smaller count."""
    discordant = only_first_correct + only_second_correct
    if discordant == 0:
        return 1.0
    return float(stats.binomtest(only_first_correct, discordant, 0.5).pvalue)


def discordant_counts(first_correct: Sequence[bool], second_correct: Sequence[bool]) -> tuple[int, int]:
    """(images only the first model gets right, images only the second gets right), over the same images in order."""
    if len(first_correct) != len(second_correct):
        raise ValueError(f"McNemar needs the same images: {len(first_correct)} vs {len(second_correct)} predictions")
    only_first = sum(1 for a, b in zip(first_correct, second_correct) if a and not b)
    only_second = sum(1 for a, b in zip(first_correct, second_correct) if b and not a)
    return only_first, only_second


def mcnemar_test(only_first_correct: int, only_second_correct: int, samples: int) -> PairedTest:
    """First model's accuracy minus the second's (points) on the same `samples` images: McNemar's exact p-value and
    the 95 % interval of a difference of paired proportions, se = √(b + c − (b − c)²/n) / n."""
    b, c, n = only_first_correct, only_second_correct, samples
    mean = 100 * (b - c) / n
    se = 100 * math.sqrt(max(0.0, b + c - (b - c) ** 2 / n)) / n
    return PairedTest(mean, None, se, "McNemar (exact)", mcnemar_p_value(b, c),
                      float(stats.norm.ppf(1 - ALPHA / 2)) * se)


def _pair_correctness(first: Row, second: Row) -> tuple[int, int, int] | None:
    """(images only the first run got right, only the second, test images) when both runs recorded which of the same
    test images they got right, else None."""
    from compressor.measure.accuracy import unpack_correct

    n = first.get("samples")
    if not (first.get("correct") and second.get("correct") and n and n == second.get("samples")):
        return None
    b, c = discordant_counts(unpack_correct(first["correct"], n), unpack_correct(second["correct"], n))
    return b, c, n


def _mcnemar_pair(first: Row, second: Row) -> PairedTest | None:
    """McNemar's test of one pair of runs when both recorded which of the same test images they got right."""
    counts = _pair_correctness(first, second)
    return None if counts is None else mcnemar_test(*counts)


def test_set_se(pairs: Sequence[tuple[Row, Row]], metric: str = "accuracy") -> float:
    """The test set's own noise in a mean difference, in points: a term that does not shrink with the seeds, because
    every seed is scored on the same images. From the runs' per-image correctness when all recorded it (the standard
    error of a difference of paired proportions, averaged over the pairs), else the two mean accuracies' binomial
    standard errors combined as if independent (conservative); 0 when the test-set size is unknown."""
    if metric == "accuracy":
        counts = [_pair_correctness(a, b) for a, b in pairs]
        if counts and None not in counts:
            return statistics.fmean(mcnemar_test(*c).se or 0.0 for c in counts)  # type: ignore[misc]
    means = [statistics.fmean(row[metric] for row in side) for side in zip(*pairs)]
    errors = [binomial_se(mean, side[0].get("samples")) for mean, side in zip(means, zip(*pairs))]
    return 0.0 if None in errors else 100 * math.hypot(*errors)  # type: ignore[arg-type]


def seed_of(row: Row) -> tuple[int | None, int]:
    """(baseline seed, strategy seed) of a run: what pairs it with a run of another method."""
    return row.get("baseline_seed"), row["seed"]


@dataclass(frozen=True)
class SeedGroup:
    """The runs of one setting: their accuracy as mean ± spread, and which seeds they ran with."""

    setting: dict[str, Any]
    rows: tuple[Row, ...]
    mean: float
    spread: float | None  # sd over seeds (n >= 2), else the one run's binomial standard error
    spread_kind: str  # "sd" or "se"

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def seeds(self) -> list[tuple[int | None, int]]:
        return sorted({seed_of(r) for r in self.rows}, key=lambda s: (s[0] is not None, s[0] or 0, s[1]))

    def mean_of(self, key: str) -> float | None:
        """Mean over the runs of a numeric column (None when no run has it)."""
        values = [r[key] for r in self.rows if r.get(key) is not None]
        return statistics.fmean(values) if values else None

    def as_dict(self) -> dict[str, Any]:
        return {**self.setting, "runs": self.n, "seeds": [list(s) for s in self.seeds], "accuracy_mean": self.mean,
                "accuracy_spread": self.spread, "spread_kind": self.spread_kind,
                "accuracy_before_recovery_mean": self.mean_of("accuracy_before_recovery"),
                "deployable_bytes_mean": self.mean_of("deployable_bytes"), "macs_mean": self.mean_of("macs"),
                "deployed_latency_ms_mean": self.mean_of("deployed_latency_ms")}


def seed_groups(rows: Sequence[Row]) -> list[SeedGroup]:
    """One group per setting, in the order settings first appear."""
    buckets: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        buckets.setdefault(tuple(row.get(k) for k in SETTING), []).append(row)
    groups = []
    for key, members in buckets.items():
        accuracies = [r["accuracy"] for r in members]
        mean = statistics.fmean(accuracies)
        if len(members) >= 2:
            spread, kind = statistics.stdev(accuracies), "sd"
        else:
            spread, kind = binomial_se(mean, members[0].get("samples")), "se"
        groups.append(SeedGroup(dict(zip(SETTING, key)), tuple(members), mean, spread, kind))
    return groups


def accuracy_text(mean: float, spread: float | None, kind: str, n: int) -> str:
    """`91.71 ± 0.28` in points, with the seed count when it is more than one: `91.52 ± 0.31 (3)`."""
    if spread is None:
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} ± {100 * spread:.2f}" + (f" ({n})" if kind == "sd" else "")


@dataclass(frozen=True)
class Difference:
    """A method's accuracy minus its reference counterpart's, in points, with the test of that difference."""

    pipeline: str
    params: str
    amount: float | None
    finetune_epochs: float
    pairs: int  # runs paired by seed; 1: a single run on each side
    mean: float  # points
    sd: float | None  # sd of the paired differences (pairs >= 2)
    se: float | None  # standard error of `mean`: sd / sqrt(pairs), or the binomial SEs combined for one pair
    test: str  # the test the verdict rests on: "t (n−1 dof)" for pairs >= 2, "z (binomial)" for one pair
    p: float | None
    half_width: float | None  # 95 % confidence half-width of `mean`, in points
    recovery_differs: bool = False  # the runs got different help (BN recalibration): no verdict

    @property
    def verdict(self) -> str:
        """`better` / `worse` when the test's p-value is below ALPHA, else `no difference`; no verdict between runs
        whose recovery differs."""
        if self.recovery_differs:
            return NOT_COMPARABLE
        return PairedTest(self.mean, self.sd, self.se, self.test, self.p, self.half_width).verdict

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def differences(rows: Sequence[Row], reference: str, metric: str = "accuracy") -> list[Difference]:
    """Every non-reference setting against the `reference` pipeline's runs at the same amount, budget, model and data.

    Runs are paired by (baseline seed, seed). With two or more pairs the mean paired difference is tested with
    Student's t (`paired_test`) on se = sqrt(sd²/n + test_set_se²): the seeds' spread, plus the test set's own noise,
    which every seed shares (Welch–Satterthwaite degrees of freedom, n−1 when the seeds' spread dominates). One pair
    gets McNemar's exact test when both runs recorded their per-image correctness, else the two binomial standard
    errors combined (conservative). `metric` is the row column compared: `accuracy`, or `accuracy_before_recovery`
    (the strategies alone; runs that did not record it are left out, and per-image records, which are of the
    recovered model, are not used).
    A reference run with the same help (BatchNorm recalibration) is preferred; where only runs with other help
    exist, the difference is shown with `recovery_differs` and no verdict."""
    rows = [row for row in rows if row.get(metric) is not None]
    refs: dict[tuple[Any, ...], dict[tuple[int | None, int], Row]] = {}
    for row in rows:
        if row["pipeline"] == reference:
            refs.setdefault(tuple(row.get(k) for k in (*COUNTERPART, *HELP)), {})[seed_of(row)] = row
    out = []
    for group in seed_groups([r for r in rows if r["pipeline"] != reference]):
        first = group.rows[0]
        key = tuple(first.get(k) for k in COUNTERPART)
        counterpart = refs.get((*key, *(first.get(k) for k in HELP)), {})
        differs = not counterpart
        if differs:  # the same amount and budget, but other help: one such reference setting, in a stable order
            others = [refs[k] for k in sorted(refs, key=repr) if k[:len(COUNTERPART)] == key]
            counterpart = others[0] if others else {}
        pairs = [(row, counterpart[seed_of(row)]) for row in group.rows if seed_of(row) in counterpart]
        if not pairs:
            continue
        deltas = [100 * (a[metric] - b[metric]) for a, b in pairs]
        mcnemar = _mcnemar_pair(*pairs[0]) if len(pairs) == 1 and metric == "accuracy" else None
        tested = mcnemar or paired_test(deltas, test_set_se(pairs, metric))
        out.append(Difference(first["pipeline"], first["params"], first.get("amount"), first["finetune_epochs"],
                              len(pairs), tested.mean, tested.sd, tested.se, tested.test, tested.p,
                              tested.half_width, differs))
    return out
