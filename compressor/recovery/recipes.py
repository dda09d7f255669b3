"""Recovery recipes: how fine-tuning after compression is done for a kind of model, picked from the baseline's
history (a frozen-encoder SupCon classifier is not fine-tuned like a model trained end to end with cross-entropy);
every explicitly given option overrides its recipe."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from compressor.errors import CompressorError


@dataclass(frozen=True)
class RecoveryRecipe:
    """Defaults of recovery fine-tuning; options left unset take these."""

    description: str
    distill: bool = False
    distill_alpha: float = 0.5
    freeze_batchnorm: bool = False
    refit_head: bool = False

    def fill(self, finetune_epochs: float, *, distill: bool | None, distill_alpha: float | None,
             freeze_batchnorm: bool | None, refit_head: bool | None) -> dict[str, Any]:
        """The given options with every None replaced by this recipe's value; it distils only when fine-tuning."""
        return {"distill": self.distill and finetune_epochs > 0 if distill is None else distill,
                "distill_alpha": self.distill_alpha if distill_alpha is None else distill_alpha,
                "freeze_batchnorm": self.freeze_batchnorm if freeze_batchnorm is None else freeze_batchnorm,
                "refit_head": self.refit_head if refit_head is None else refit_head}


RECOVERY_RECIPES = {
    "standard": RecoveryRecipe("cross-entropy fine-tuning (distillation only with --distill), BatchNorm statistics "
                               "updated while fine-tuning"),
    "frozen-encoder": RecoveryRecipe(
        "for classifiers whose linear head was fitted on a frozen encoder (SupCon + linear evaluation): the "
        "standard fine-tuning, then the head fitted again on the features the encoder now produces (re-estimated "
        "BatchNorm statistics alone shift those features away from the ones the head was fitted to)",
        refit_head=True),
}
AUTO = "auto"
FROZEN_ENCODER_STEPS = ("supcon-linear",)  # history steps that fit a head on a frozen encoder


def recovery_recipe_names() -> list[str]:
    """The accepted values of --recovery-recipe: auto, then every recipe."""
    return [AUTO, *RECOVERY_RECIPES]


def recovery_recipe_for(history: Iterable[Mapping[str, Any]]) -> str:
    """The recipe a baseline with this history gets under "auto": frozen-encoder after a linear evaluation."""
    steps = [entry.get("step") for entry in history]
    return "frozen-encoder" if any(step in FROZEN_ENCODER_STEPS for step in steps) else "standard"


def get_recovery_recipe(name: str, history: Iterable[Mapping[str, Any]] = ()) -> tuple[str, RecoveryRecipe]:
    """The recipe called `name` ("auto": chosen from `history`) and its resolved name, or a one-line error."""
    if name == AUTO:
        name = recovery_recipe_for(history)
    if name not in RECOVERY_RECIPES:
        raise CompressorError(f"unknown recovery recipe {name!r}; choose one of {', '.join(recovery_recipe_names())}")
    return name, RECOVERY_RECIPES[name]
