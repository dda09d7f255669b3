"""One recovery configuration: what a compressed model gets back after the strategies, validated once."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from compressor.errors import CompressorError
from compressor.models.training import PRECISIONS
from compressor.strategies.steps import Step, recalibration_recommended

DEFAULT_FINETUNE_LR = 0.01  # fine-tuning's peak LR when nothing says otherwise (the CLI scales the baseline's)


@dataclass
class RecoveryConfig:
    """What to do after the strategies: BatchNorm recalibration and fine-tuning (pruned weights stay zero),
    optionally distilled from the uncompressed model."""

    finetune_epochs: float = 0
    finetune_lr: float = DEFAULT_FINETUNE_LR
    bn_recalibrate: bool | None = None  # None: when a step recommends it (structure removed, second order, ...)
    seed: int = 0
    distill: bool = False
    distill_alpha: float = 0.5
    distill_temperature: float = 4.0
    label_smoothing: float = 0.0
    prune_rounds: int = 1  # gradual pruning: reach the targets in this many rounds, fine-tuning between them
    precision: str = "auto"  # of fine-tuning: fp32 | bf16 | auto (a short probe on runs of 100+ steps)
    freeze_batchnorm: bool = False  # fine-tuning keeps BatchNorm running statistics (eval mode)
    refit_head: bool = False  # last: fit the final linear layer again on the penultimate features (recovery.head)
    recipe: str = "standard"  # the recovery recipe these settings came from (compressor.recovery.recipes), recorded

    def __post_init__(self) -> None:
        if not (math.isfinite(self.finetune_epochs) and self.finetune_epochs >= 0):
            raise CompressorError(f"finetune_epochs must be a finite number >= 0; got {self.finetune_epochs!r}")
        if not (math.isfinite(self.finetune_lr) and self.finetune_lr > 0):
            raise CompressorError(f"finetune_lr must be a finite number > 0; got {self.finetune_lr!r}")
        if not (math.isfinite(self.distill_alpha) and 0 <= self.distill_alpha <= 1):
            raise CompressorError(f"distill_alpha must be a number in [0, 1]; got {self.distill_alpha!r}")
        if not (math.isfinite(self.distill_temperature) and self.distill_temperature > 0):
            raise CompressorError(f"distill_temperature must be a number > 0; got {self.distill_temperature!r}")
        if not (math.isfinite(self.label_smoothing) and 0 <= self.label_smoothing < 1):
            raise CompressorError(f"label_smoothing must be a number in [0, 1); got {self.label_smoothing!r}")
        if isinstance(self.prune_rounds, bool) or not isinstance(self.prune_rounds, int) or self.prune_rounds < 1:
            raise CompressorError(f"prune_steps must be an integer of at least 1; got {self.prune_rounds!r}")
        if self.prune_rounds > 1 and self.finetune_epochs == 0:
            raise CompressorError("gradual pruning fine-tunes between its steps: give finetune_epochs > 0 "
                                  "(--finetune-epochs) with prune_steps (--prune-steps)")
        if self.distill and self.finetune_epochs == 0:
            raise CompressorError("distillation happens during fine-tuning: give finetune_epochs > 0 "
                                  "(--finetune-epochs) with distill (--distill)")
        if self.precision not in PRECISIONS:
            raise CompressorError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")

    def for_steps(self, steps: Sequence[Step]) -> RecoveryConfig:
        """These settings with the automatic BatchNorm recalibration decided: on when a step recommends it."""
        if self.bn_recalibrate is not None:
            return self
        return dataclasses.replace(self, bn_recalibrate=recalibration_recommended(list(steps)))
