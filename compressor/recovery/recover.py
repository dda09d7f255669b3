"""Recovery after the strategies: BatchNorm recalibration, fine-tuning (optionally distilled), head re-fit."""

from __future__ import annotations

from typing import Any

from torch import nn

from compressor.data.loaders import Split
from compressor.errors import CompressorError
from compressor.models.training import TrainConfig, train, zero_masks
from compressor.recovery.batchnorm import recalibrate_batchnorm
from compressor.recovery.config import RecoveryConfig
from compressor.recovery.head import LinearConfig, refit_classifier


def recover(model: nn.Module, train_split: Split, input_size: int, recovery: RecoveryConfig, *,
            show_progress: bool = False, teacher: nn.Module | None = None) -> dict[str, Any]:
    """BatchNorm recalibration, fine-tuning (distilled from `teacher`, the uncompressed model, when
    `recovery.distill`) and a re-fit of the final linear layer, on `train_split` and the model's device; returns
    their record. `recovery` must be resolved (RecoveryConfig.resolved): nothing left None."""
    if None in (recovery.finetune_lr, recovery.bn_recalibrate, recovery.distill, recovery.distill_alpha):
        raise ValueError("recover() needs a resolved RecoveryConfig: call .resolved(steps) first")
    if recovery.distill and teacher is None:
        raise CompressorError("distillation needs a teacher: the uncompressed model")
    record: dict[str, Any] = {"bn_recalibrate": bool(recovery.bn_recalibrate),
                              "finetune_epochs": recovery.finetune_epochs, "distill": recovery.distill,
                              "recipe": recovery.recovery_recipe}
    if recovery.bn_recalibrate:
        record["bn_images"] = recalibrate_batchnorm(model, train_split, input_size, seed=recovery.seed)
    if recovery.finetune_epochs > 0:
        masks = zero_masks(model)
        batch_size = getattr(train_split, "batch_size", None) or TrainConfig.batch_size
        stats = train(model, train_split, input_size,
                      TrainConfig(epochs=recovery.finetune_epochs, lr=recovery.finetune_lr, seed=recovery.seed,
                                  batch_size=batch_size, label_smoothing=recovery.label_smoothing,
                                  distill_alpha=recovery.distill_alpha,
                                  distill_temperature=recovery.distill_temperature,
                                  precision=recovery.precision or "auto",
                                  freeze_batchnorm=bool(recovery.freeze_batchnorm)),
                      masks=masks, description="fine-tune (distilled)" if recovery.distill else "fine-tune",
                      show_progress=show_progress, teacher=teacher if recovery.distill else None)
        record["finetune"] = {**stats, "masked_tensors": len(masks)}
    if recovery.refit_head:
        record["refit_head"] = refit_classifier(model, train_split, input_size, LinearConfig(seed=recovery.seed))
    return record
