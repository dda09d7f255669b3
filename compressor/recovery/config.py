"""One recovery configuration: what a compressed model gets back after the strategies, validated once.

The CLI (`run` options and `run --config FILE`), the Python API (`compress(..., recovery=RecoveryConfig(...))` or
the same names as keywords) and sweep grids build this one dataclass; every field is named like its option
(`finetune_epochs` is `--finetune-epochs`). A field left None is decided by `resolved`: from the recovery recipe,
the baseline's learning rate and the pipeline's steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compressor._util.fileio import read_toml
from compressor.errors import CompressorError
from compressor.models.training import PRECISIONS
from compressor.recovery.recipes import AUTO, get_recovery_recipe, recovery_recipe_names
from compressor.strategies.steps import Step, recalibration_recommended

DEFAULT_FINETUNE_LR = 0.01  # fine-tuning's peak LR when nothing says otherwise (a run scales the baseline's)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class RecoveryConfig:
    """BatchNorm recalibration, fine-tuning (pruned weights stay zero; optionally distilled from the uncompressed
    model, optionally in gradual rounds) and a head re-fit, after the strategies. None: decided by `resolved`."""

    finetune_epochs: float = 0  # fractions run the first part of one shuffled epoch
    finetune_lr: float | None = None  # None: 0.2 x the baseline's peak LR when known, else DEFAULT_FINETUNE_LR
    bn_recalibrate: bool | None = None  # None: when a step recommends it (structure removed, second order, ...)
    distill: bool | None = None  # None: the recovery recipe's (only with fine-tuning)
    distill_alpha: float | None = None  # None: the recovery recipe's
    distill_temperature: float = 4.0
    label_smoothing: float = 0.0  # of fine-tuning's cross-entropy
    prune_steps: int = 1  # gradual pruning: reach the targets in this many rounds, fine-tuning between them
    precision: str | None = None  # of fine-tuning: fp32 | bf16 | auto; None: auto
    freeze_batchnorm: bool | None = None  # fine-tuning keeps BatchNorm running statistics; None: the recipe's
    refit_head: bool | None = None  # last: fit the final linear layer again; None: the recovery recipe's
    recovery_recipe: str = AUTO  # compressor.recovery.recipes; auto: chosen from the baseline's history
    seed: int = 0  # of recalibration batches, fine-tuning and the head re-fit (a run sets its --seed)

    def __post_init__(self) -> None:
        def number(name: str, ok: bool, what: str) -> None:
            if not ok:
                raise CompressorError(f"{_flag(name)} must be {what}; got {getattr(self, name)!r}")

        def finite(value: Any) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

        number("finetune_epochs", finite(self.finetune_epochs) and self.finetune_epochs >= 0, "a finite number ≥ 0")
        number("finetune_lr", self.finetune_lr is None or (finite(self.finetune_lr) and self.finetune_lr > 0),
               "a finite number > 0")
        number("distill_alpha", self.distill_alpha is None or (finite(self.distill_alpha)
                                                               and 0 <= self.distill_alpha <= 1),
               "a number in [0, 1]")
        number("distill_temperature", finite(self.distill_temperature) and self.distill_temperature > 0,
               "a number > 0")
        number("label_smoothing", finite(self.label_smoothing) and 0 <= self.label_smoothing < 1,
               "a number in [0, 1)")
        number("prune_steps", isinstance(self.prune_steps, int) and not isinstance(self.prune_steps, bool)
               and self.prune_steps >= 1, "an integer of at least 1")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise CompressorError(f"--precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.recovery_recipe not in recovery_recipe_names():
            raise CompressorError(f"--recovery-recipe must be one of {', '.join(recovery_recipe_names())}; "
                                  f"got {self.recovery_recipe!r}")
        if self.prune_steps > 1 and self.finetune_epochs == 0:
            raise CompressorError("--prune-steps fine-tunes between its rounds: give --finetune-epochs > 0 as well")
        if self.distill and self.finetune_epochs == 0:
            raise CompressorError("--distill distils during fine-tuning: give --finetune-epochs > 0 as well")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "recovery") -> RecoveryConfig:
        """A config from a mapping of field names (a --config file's [recovery] table, compress() keywords)."""
        names = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise CompressorError(f"{where}: unknown setting(s) {', '.join(unknown)}; accepted: {', '.join(names)}")
        return cls(**values)

    def resolved(self, steps: Sequence[Step], history: Iterable[Mapping[str, Any]] = (),
                 baseline_lr: float | None = None) -> RecoveryConfig:
        """Every None decided: the recovery recipe (auto: from the baseline's `history`) fills distillation, the
        head re-fit and BatchNorm freezing; the LR is `baseline_lr` (already scaled) or the default; BatchNorm is
        recalibrated when a step recommends it; precision auto."""
        name, recipe = get_recovery_recipe(self.recovery_recipe, history)
        filled = recipe.fill(self.finetune_epochs, distill=self.distill, distill_alpha=self.distill_alpha,
                             freeze_batchnorm=self.freeze_batchnorm, refit_head=self.refit_head)
        bn = self.bn_recalibrate if self.bn_recalibrate is not None else recalibration_recommended(list(steps))
        lr = self.finetune_lr if self.finetune_lr is not None else baseline_lr or DEFAULT_FINETUNE_LR
        return dataclasses.replace(self, recovery_recipe=name, finetune_lr=lr, bn_recalibrate=bn,
                                   precision=self.precision or "auto", **filled)

    @property
    def does_anything(self) -> bool:
        """Whether recovery changes the model at all (recalibration, fine-tuning or a head re-fit)."""
        return bool(self.bn_recalibrate) or self.finetune_epochs > 0 or bool(self.refit_head)


def read_recovery_file(path: Path | None) -> dict[str, Any]:
    """The [recovery] table of a TOML file (`run --config FILE`), or {} without a file; one-line errors."""
    if path is None:
        return {}
    document = read_toml(path, "--config file")
    table = document.get("recovery")
    if not isinstance(table, dict):
        raise CompressorError(f"--config {path}: needs a [recovery] table (keys: "
                              f"{', '.join(f.name for f in dataclasses.fields(RecoveryConfig))})")
    return table
