"""Second-order pruning: OBD (diagonal Fisher), WoodFisher (block Woodbury) and FishLeg (learned Kronecker Q).

All three share one procedure: estimate F⁻¹ on training images with the current mask → OBS saliency → global
selection (or N:M groups) → OBS weight update → pruned weights set to exactly zero, repeated over geometric sparsity
steps, then BatchNorm statistics recalibrated. Only the F⁻¹ approximation differs. The calibration split measures
the real loss change of every step beside the predicted one.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.registry import (
    StrategyContext,
    StrategyOutput,
    check_fraction,
    check_int,
    param,
    register_strategy,
)
from compressor.strategies.second_order.fisher import FisherVectorProduct, sample_gradients
from compressor.strategies.second_order.fishleg import FishLegInverse, fit
from compressor.strategies.second_order.inverse import BlockWoodburyInverse, DiagonalInverse, LayerInverse
from compressor.strategies.second_order.obs import PruneStep, prune_nm, prune_unstructured
from compressor.strategies.selection import prunable_layers, sparsity_record
from compressor.strategies.sensitivity import calib_scores
from compressor.train import recalibrate_batchnorm

Gradients = Callable[[dict[str, torch.Tensor], str], Iterator[dict[str, torch.Tensor]]]


def _pattern(value: str, name: str) -> tuple[int, int] | None:
    if not value:
        return None
    match = re.fullmatch(r"(\d+):(\d+)", value)
    if not match or not 0 < int(match[1]) < int(match[2]):
        raise CompressorError(f"{name}.pattern must be N:M with 0 < N < M (e.g. 2:4) or empty; got {value!r}")
    return int(match[1]), int(match[2])


def _require_ints(strategy: str, owner: object, keys: tuple[str, ...], minimum: int = 1) -> None:
    """One clear error for any of `keys` that is not an integer of at least `minimum`."""
    for key in keys:
        check_int(f"{strategy}.{key}", getattr(owner, key), minimum)


def _require_group_multiple(strategy: str, key: str, value: int, nm: tuple[int, int] | None, pattern: str) -> None:
    if nm is not None and value % nm[1]:
        raise CompressorError(f"{strategy}.{key} must be a multiple of M={nm[1]} with pattern {pattern}; got {value}")


@dataclass
class SecondOrderBase:
    """Shared parameters and procedure of the OBS-family strategies; subclasses say how F⁻¹ is built."""

    amount: float = param(0.5, "global fraction of eligible weights to zero, in [0, 1)")
    damping: float = param(1e-4, "γ added to the Fisher of the per-sample mean loss")
    gradients: int = param(128, "minibatch gradients per Fisher estimate")
    grad_batch: int = param(16, "training images per gradient minibatch")
    recomputations: int = param(4, "pruning steps (geometric in density); F⁻¹ is rebuilt before each")
    pattern: str = param("", "N:M semi-structured pattern, e.g. 2:4 (one group-OBS step); empty: unstructured")
    bn_recalibrate: bool = param(True, "re-estimate BatchNorm statistics on training images after pruning")
    calib_samples: int = param(1000, "calibration images on which the real loss change is measured")
    include_first_conv: bool = param(False, "also prune the first (stem) convolution")
    include_classifier: bool = param(False, "also prune the final linear classifier")

    name = "second-order"

    def __post_init__(self) -> None:
        check_fraction(f"{self.name}.amount", self.amount)
        self.nm = _pattern(self.pattern, self.name)
        if self.nm is not None and self.amount not in (0.5, 1 - self.nm[0] / self.nm[1]):
            raise CompressorError(f"{self.name}.amount {self.amount} contradicts pattern {self.pattern}, which "
                                  f"prunes {1 - self.nm[0] / self.nm[1]:g} of every group; drop one of them")
        _require_ints(self.name, self, ("gradients", "grad_batch", "recomputations", "calib_samples"))
        if not self.damping > 0:
            raise CompressorError(f"{self.name}.damping must be a positive number; got {self.damping!r}")

    def builder(self, model: nn.Module, layers: dict[str, nn.Module], context: StrategyContext,
                gradients: Gradients) -> Callable[[dict[str, torch.Tensor]], dict[str, LayerInverse]]:
        """A function from keep-masks to each layer's inverse Fisher (implemented by each strategy)."""
        raise NotImplementedError

    def extra_record(self) -> dict[str, Any]:
        """What the strategy adds to its record (e.g. FishLeg's auxiliary loss)."""
        return {}

    def apply(self, model: nn.Module, context: StrategyContext) -> StrategyOutput:
        """Prune with OBS on this strategy's F⁻¹, recalibrate BatchNorm, record predicted vs measured loss."""
        layers = prunable_layers(model, include_first_conv=self.include_first_conv,
                                 include_classifier=self.include_classifier)
        if not layers:
            raise CompressorError(f"{self.name} found no conv/linear layers to prune in {type(model).__name__}")
        model.eval()
        calib = list(itertools.islice(context.calib.batches(context.input_size, 250),
                                      -(-self.calib_samples // 250)))

        def loss() -> float:
            return calib_scores(model, context, calib)[1]

        rounds = itertools.count()

        def gradients(keep: dict[str, torch.Tensor], what: str) -> Iterator[dict[str, torch.Tensor]]:
            seed = context.seed + 1000 * next(rounds)
            batches = itertools.islice(context.train.batches(context.input_size, self.grad_batch,
                                                             shuffle=True, seed=seed), self.gradients)
            with context.progress(f"{self.name}: gradients for {what}", self.gradients) as advance:
                for grads in sample_gradients(model, layers, batches, keep):
                    advance()
                    yield grads

        build = self.builder(model, layers, context, gradients)
        start_accuracy, start_loss = calib_scores(model, context, calib)
        if self.nm is not None:
            keep, step, skipped = prune_nm(layers, *self.nm, build, loss=loss)
            steps = [step]
        else:
            skipped = []
            keep, steps = prune_unstructured(layers, self.amount, build, self.recomputations, loss=loss)
        pruned_accuracy, pruned_loss = calib_scores(model, context, calib)
        record: dict[str, Any] = sparsity_record(keep)
        if self.bn_recalibrate:
            record["bn_images"] = recalibrate_batchnorm(model, context.train, context.input_size,
                                                        seed=context.seed)
        final_accuracy, final_loss = calib_scores(model, context, calib)
        record.update({
            "steps": [_step_dict(s) for s in steps],
            "predicted_loss_increase": sum(s.predicted_loss_increase for s in steps),
            "measured_loss_increase": pruned_loss - start_loss,
            "calibration": {"samples": sum(len(y) for _, y in calib), "accuracy_before": start_accuracy,
                            "loss_before": start_loss, "accuracy_pruned": pruned_accuracy,
                            "loss_pruned": pruned_loss, "accuracy_after_bn": final_accuracy,
                            "loss_after_bn": final_loss},
            "skipped_layers": skipped,
            **self.extra_record(),
        })
        return StrategyOutput(model, record)


def _step_dict(step: PruneStep) -> dict[str, Any]:
    return {"sparsity": round(step.sparsity, 6), "pruned": step.pruned,
            "predicted_loss_increase": step.predicted_loss_increase,
            "measured_loss_increase": step.measured_loss_increase, "seconds": round(step.seconds, 2)}


def _fisher_diagonal(grads: Iterator[dict[str, torch.Tensor]], scale: float) -> dict[str, torch.Tensor]:
    """(b / m) Σ g²: the diagonal of the empirical Fisher from m minibatch gradients of b samples."""
    total: dict[str, torch.Tensor] = {}
    for batch in grads:
        for name, g in batch.items():
            total[name] = total.get(name, 0) + g.double() ** 2
    return {name: (scale * t).float() for name, t in total.items()}


@register_strategy("obd")
@dataclass
class OptimalBrainDamage(SecondOrderBase):
    """Optimal Brain Damage: saliency ½F_qq w_q² from the diagonal empirical Fisher; no compensating update."""

    name = "obd"

    def builder(self, model, layers, context, gradients):  # type: ignore[no-untyped-def]
        def build(keep: dict[str, torch.Tensor]) -> dict[str, LayerInverse]:
            diag = _fisher_diagonal(gradients(keep, "the diagonal Fisher"), self.grad_batch / self.gradients)
            return {name: DiagonalInverse(d, self.damping) for name, d in diag.items()}
        return build


@register_strategy("woodfisher")
@dataclass
class WoodFisher(SecondOrderBase):
    """WoodFisher: OBS with a block-diagonal empirical inverse Fisher built by Woodbury updates."""

    block_size: int = param(32, "weights per Fisher block (memory: block_size × eligible weights × 4 bytes)")
    chunk: int = param(16, "gradients folded in per Woodbury step (rank-k update; 1 is the rank-one recursion)")

    name = "woodfisher"

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_ints(self.name, self, ("block_size", "chunk"))
        _require_group_multiple(self.name, "block_size", self.block_size, self.nm, self.pattern)

    def builder(self, model, layers, context, gradients):  # type: ignore[no-untyped-def]
        def build(keep: dict[str, torch.Tensor]) -> dict[str, LayerInverse]:
            inverses = {name: BlockWoodburyInverse(tuple(k.shape), self.block_size, self.damping, device=k.device)
                        for name, k in keep.items()}
            scale = self.grad_batch / self.gradients
            buffer: list[dict[str, torch.Tensor]] = []

            def flush() -> None:
                for name, inverse in inverses.items():
                    inverse.add_gradients(torch.stack([b[name] for b in buffer]), scale)
                buffer.clear()

            for grads in gradients(keep, "the WoodFisher blocks"):
                buffer.append(grads)
                if len(buffer) == self.chunk:
                    flush()
            if buffer:
                flush()
            return inverses
        return build


@register_strategy("fishleg")
@dataclass
class FishLeg(SecondOrderBase):
    """FishLeg surgeon: OBS with a learned Kronecker inverse Fisher fitted to the exact Gauss-Newton product."""

    aux_steps: int = param(200, "Adam steps on the auxiliary loss before the first pruning step")
    refine_steps: int = param(40, "further auxiliary steps with the new mask before each later step")
    aux_lr: float = param(1e-2, "Adam learning rate of the elementwise scaling A (cosine-decayed in each fit)")
    factor_lr: float = param(3e-4, "Adam learning rate of the Kronecker factors R and L")
    probes: int = param(1, "Gaussian probe vectors u per auxiliary step")
    fisher_batch: int = param(16, "training images per exact Fisher-vector product")
    block: int = param(64, "largest block of the Kronecker factors (rows of R, columns of L)")

    name = "fishleg"

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_ints(self.name, self, ("probes", "fisher_batch", "block"))
        _require_ints(self.name, self, ("aux_steps", "refine_steps"), minimum=0)
        for key in ("aux_lr", "factor_lr"):
            if not getattr(self, key) > 0:
                raise CompressorError(f"fishleg.{key} must be a positive number; got {getattr(self, key)!r}")
        _require_group_multiple(self.name, "block", self.block, self.nm, self.pattern)
        self._aux: list[dict[str, Any]] = []

    def builder(self, model, layers, context, gradients):  # type: ignore[no-untyped-def]
        fvp = FisherVectorProduct(model, layers)
        state: dict[str, FishLegInverse] = {}

        def images() -> Iterator[torch.Tensor]:
            for epoch in itertools.count():
                for x, _ in context.train.batches(context.input_size, self.fisher_batch, shuffle=True,
                                                          seed=context.seed + 7919 * (epoch + 1)):
                    yield x

        stream = images()

        def product(v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return fvp(next(stream), v)

        def build(keep: dict[str, torch.Tensor]) -> dict[str, LayerInverse]:
            first = "q" not in state
            if first:
                diag = _fisher_diagonal(gradients(keep, "the initial diagonal"), self.grad_batch / self.gradients)
                state["q"] = FishLegInverse(diag, self.damping, self.block)
            steps = self.aux_steps if first else self.refine_steps
            saved = state["q"].snapshot()
            with context.progress(f"fishleg: auxiliary loss ({'fit' if first else 'refit'})", steps) as advance:
                values = fit(state["q"], product, steps, lr=self.aux_lr, factor_lr=self.factor_lr,
                             probes=self.probes, masks=keep, seed=context.seed + len(self._aux),
                             on_step=lambda *_: advance())
            tenth = max(1, len(values) // 10)
            first = sum(values[:tenth]) / tenth if values else None
            last = sum(values[-tenth:]) / tenth if values else None
            worse = first is not None and last is not None and last > first
            if worse:
                state["q"].restore(saved)
            self._aux.append({"steps": steps, "aux_loss_first_tenth_mean": first, "aux_loss_last_tenth_mean": last,
                              "restored_because_worse": worse})
            return dict(state["q"].layers)
        return build

    def extra_record(self) -> dict[str, Any]:
        return {"aux_fits": self._aux}
