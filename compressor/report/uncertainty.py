"""How sure a report can be: runs of one setting over seeds as mean ± sd, one run with its binomial standard error,
and differences from a reference method with the noise they carry.

Rows are `RunRow.as_dict()` mappings. A *setting* is everything a run was asked to do except its seeds; runs of
one setting differ only in the seed of the strategies (calibration, fine-tuning) and of the baseline's training.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Row = Mapping[str, Any]

SETTING = ("pipeline", "params", "finetune_epochs", "arch", "dataset", "input_size")
# a method's counterpart in a reference: same amount, recovery budget, model, data and resolution
COUNTERPART = ("amount", "finetune_epochs", "arch", "dataset", "input_size")


def binomial_se(accuracy: float, samples: int | None) -> float | None:
    """Standard error of an accuracy measured on `samples` independent images: sqrt(p(1-p)/n)."""
    if not samples:
        return None
    return math.sqrt(accuracy * (1 - accuracy) / samples)


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
    """A method's accuracy minus its reference counterpart's, in points, with the noise of that difference."""

    pipeline: str
    params: str
    amount: float | None
    finetune_epochs: float
    pairs: int  # runs paired by seed; 1: a single run on each side
    mean: float  # points
    sd: float | None  # sd of the paired differences (pairs >= 2)
    se: float | None  # standard error of `mean`: sd / sqrt(pairs), or the binomial SEs combined for one pair

    @property
    def verdict(self) -> str:
        """`better` / `worse` when the difference is more than twice its standard error, else `no difference`."""
        if self.se is None or abs(self.mean) <= 2 * self.se:
            return "no difference"
        return "better" if self.mean > 0 else "worse"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def differences(rows: Sequence[Row], reference: str) -> list[Difference]:
    """Every non-reference setting against the `reference` pipeline's runs at the same amount, budget, model and data.

    Runs are paired by (baseline seed, seed); with two or more pairs the mean paired difference carries the sd of
    the differences and its standard error sd/sqrt(n). With one pair the error is the two binomial standard errors
    combined, which overstates the noise of a paired comparison on one test set (it is conservative)."""
    refs: dict[tuple[Any, ...], dict[tuple[int | None, int], Row]] = {}
    for row in rows:
        if row["pipeline"] == reference:
            refs.setdefault(tuple(row.get(k) for k in COUNTERPART), {})[seed_of(row)] = row
    out = []
    for group in seed_groups([r for r in rows if r["pipeline"] != reference]):
        first = group.rows[0]
        counterpart = refs.get(tuple(first.get(k) for k in COUNTERPART), {})
        pairs = [(row, counterpart[seed_of(row)]) for row in group.rows if seed_of(row) in counterpart]
        if not pairs:
            continue
        deltas = [100 * (a["accuracy"] - b["accuracy"]) for a, b in pairs]
        if len(pairs) >= 2:
            sd = statistics.stdev(deltas)
            se: float | None = sd / math.sqrt(len(pairs))
        else:
            sd = None
            a, b = pairs[0]
            errors = [binomial_se(r["accuracy"], r.get("samples")) for r in (a, b)]
            se = None if None in errors else 100 * math.hypot(*errors)  # type: ignore[arg-type]
        out.append(Difference(first["pipeline"], first["params"], first.get("amount"), first["finetune_epochs"],
                              len(pairs), statistics.fmean(deltas), sd, se))
    return out
