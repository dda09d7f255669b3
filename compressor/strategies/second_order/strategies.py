"""Second-order pruning: OBD (diagonal Fisher), WoodFisher (block Woodbury) and FishLeg (learned Kronecker Q).

All three share one procedure: estimate F⁻¹ on training images with the current mask → OBS saliency → global
selection (or N:M groups) → OBS weight update → pruned weights set to exactly zero, repeated over geometric sparsity
steps, then BatchNorm statistics recalibrated. Only the F⁻¹ approximation differs. The calibration split measures
the real loss change of every step beside the predicted one.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.strategies.registry import (
    Strategy,
    StrategyContext,
    StrategyOutput,
    check_fraction,
    check_int,
    param,
    register_strategy,
)
from compressor.strategies.second_order.fisher import FisherVectorProduct, sample_gradients, sampled_label_loss
from compressor.strategies.second_order.fishleg import FishLegInverse, fit, gaussian_probes, gradient_probes
from compressor.strategies.second_order.inverse import BlockWoodburyInverse, DiagonalInverse, LayerInverse
from compressor.strategies.second_order.obs import PruneStep, prune_nm, prune_unstructured
from compressor.strategies.selection import prunable_layers, sparsity_record
from compressor.strategies.sensitivity import calib_scores

# Kronecker factors FishLeg learned on a model, kept while the model lives, so that gradual pruning refines them
# between rounds (FishLeg Surgeon) instead of starting from the identity each round.
_LEARNED_FACTORS: weakref.WeakKeyDictionary[nn.Module, dict[str, tuple[torch.Tensor, torch.Tensor]]] = (
    weakref.WeakKeyDictionary())
FISHERS = ("empirical", "sampled")
PROBES = ("gradient", "gaussian")
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
class SecondOrderBase(Strategy):
    """Shared parameters and procedure of the OBS-family strategies; subclasses say how F⁻¹ is built."""

    amount: float = param(0.5, "global fraction of eligible weights to zero, in [0, 1)")
    damping: float = param(1e-4, "γ added to the Fisher of the per-sample mean loss")
    relative_damping: float = param(0.0, "if > 0, each layer's γ is this times the mean of its Fisher diagonal "
                                         "(damping scaled to the layer's curvature), plus `damping`")
    fisher: str = param("empirical", "gradients of the true labels (empirical Fisher) or of labels sampled "
                                     "from the model (sampled: the Gauss-Newton Fisher)")
    gradients: int = param(128, "minibatch gradients per Fisher estimate")
    grad_batch: int = param(16, "training images per gradient minibatch")
    recomputations: int = param(4, "pruning steps (geometric in density); F⁻¹ is rebuilt before each")
    pattern: str = param("", "N:M semi-structured pattern, e.g. 2:4 (one group-OBS step); empty: unstructured")
    calib_samples: int = param(1000, "calibration images on which the real loss change is measured")
    include_first_conv: bool = param(False, "also prune the first (stem) convolution")
    include_classifier: bool = param(False, "also prune the final linear classifier")

    name = "second-order"
    recommends_bn_recalibration: ClassVar[bool] = True  # the run's recovery decides (compressor.strategies.registry)

    def __post_init__(self) -> None:
        check_fraction(f"{self.name}.amount", self.amount)
        self.nm = _pattern(self.pattern, self.name)
        if self.nm is not None and self.amount not in (0.5, 1 - self.nm[0] / self.nm[1]):
            raise CompressorError(f"{self.name}.amount {self.amount} contradicts pattern {self.pattern}, which "
                                  f"prunes {1 - self.nm[0] / self.nm[1]:g} of every group; drop one of them")
        _require_ints(self.name, self, ("gradients", "grad_batch", "recomputations", "calib_samples"))
        if not self.damping > 0:
            raise CompressorError(f"{self.name}.damping must be a positive number; got {self.damping!r}")
        if not self.relative_damping >= 0:
            raise CompressorError(f"{self.name}.relative_damping must be ≥ 0; got {self.relative_damping!r}")
        if self.fisher not in FISHERS:
            raise CompressorError(f"{self.name}.fisher must be one of {', '.join(FISHERS)}; got {self.fisher!r}")

    def layer_damping(self, fisher_diag: dict[str, torch.Tensor]) -> dict[str, float]:
        """γ_l per layer: `damping`, plus `relative_damping` × the layer's mean Fisher diagonal."""
        return {name: self.damping + self.relative_damping * float(d.mean()) for name, d in fisher_diag.items()}

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
            loss_fn = sampled_label_loss(seed) if self.fisher == "sampled" else None
            with context.progress(f"{self.name}: gradients for {what}", self.gradients) as advance:
                for grads in sample_gradients(model, layers, batches, keep, loss_fn=loss_fn):
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
        record.update({
            "steps": [_step_dict(s) for s in steps],
            "predicted_loss_increase": sum(s.predicted_loss_increase for s in steps),
            "measured_loss_increase": pruned_loss - start_loss,
            "calibration": {"samples": sum(len(y) for _, y in calib), "accuracy_before": start_accuracy,
                            "loss_before": start_loss, "accuracy_pruned": pruned_accuracy,
                            "loss_pruned": pruned_loss},
            "skipped_layers": skipped,
            **self.extra_record(),
        })
        return StrategyOutput(model, record)


def _step_dict(step: PruneStep) -> dict[str, Any]:
    return {"sparsity": round(step.sparsity, 6), "pruned": step.pruned,
            "predicted_loss_increase": step.predicted_loss_increase,
            "measured_loss_increase": step.measured_loss_increase, "seconds": round(step.seconds, 2)}


def _keeping(stream: Iterator[dict[str, torch.Tensor]], store: list[dict[str, torch.Tensor]], count: int
             ) -> Iterator[dict[str, torch.Tensor]]:
    """Pass `stream` through, appending its first `count` items to `store` (the rest are not kept in memory)."""
    for item in stream:
        if len(store) < count:
            store.append(item)
        yield item


def _fisher_diagonal(grads: Iterator[dict[str, torch.Tensor]], scale: float) -> dict[str, torch.Tensor]:
    """(b / m) Σ g²: the Fisher diagonal from m minibatch gradients of b samples (empirical or sampled labels)."""
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
            damping = self.layer_damping(diag)
            return {name: DiagonalInverse(d, damping[name]) for name, d in diag.items()}
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
        if self.relative_damping:
            raise CompressorError("woodfisher.relative_damping is not supported (its blocks start at γ⁻¹I before "
                                  "any gradient is seen); set woodfisher.damping instead")
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
    """FishLeg surgeon: OBS with a learned Kronecker inverse Fisher fitted to the exact Gauss-Newton product.

    At every recomputation the Fisher diagonal is re-estimated from gradients of model-sampled labels (the same
    Gauss-Newton matrix the auxiliary loss multiplies by), diag(Q) is re-anchored to it, the factors are refined
    on probes drawn from those gradients, and each layer keeps its fit only where it beats the plain diagonal
    start on fixed held-out probes (else that layer prunes as OBD would).
    """

    relative_damping: float = param(0.1, "each layer's γ is this times the mean of its Fisher diagonal, plus "
                                         "`damping` (damping scaled to the layer's curvature)")
    fisher: str = param("sampled", "gradients of labels sampled from the model (the Gauss-Newton Fisher the "
                                   "auxiliary loss uses) or of the true labels (empirical)")
    aux_steps: int = param(200, "Adam steps on the auxiliary loss before the first pruning step")
    refine_steps: int = param(40, "further auxiliary steps with the new mask before each later step")
    aux_lr: float = param(1e-3, "Adam learning rate of the elementwise scaling A (0: A follows the diagonal)")
    factor_lr: float = param(3e-3, "Adam learning rate of the Kronecker factors R and L")
    probes: int = param(1, "probe vectors u per auxiliary step")
    probe: str = param("gradient", "probe distribution: gradient (sampled-label gradients, per layer) or gaussian")
    probe_bank: int = param(32, "sampled-label gradients kept as fitting probes (memory: this × prunable weights)")
    heldout_probes: int = param(8, "fixed held-out probes (own gradients and images) that accept or reject each "
                                   "layer's fit against the diagonal start")
    fisher_batch: int = param(16, "training images per exact Fisher-vector product")
    warm_start: bool = param(True, "start from the factors learned on this same model in an earlier round of "
                                   "gradual pruning (--prune-steps), refining them for refine_steps")
    block: int = param(64, "largest block of the Kronecker factors (rows of R, columns of L)")

    name = "fishleg"

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_ints(self.name, self, ("probes", "fisher_batch", "block", "probe_bank", "heldout_probes"))
        _require_ints(self.name, self, ("aux_steps", "refine_steps"), minimum=0)
        if not self.aux_lr >= 0 or not self.factor_lr > 0:
            raise CompressorError(f"fishleg.aux_lr must be ≥ 0 and fishleg.factor_lr > 0; got {self.aux_lr!r}, "
                                  f"{self.factor_lr!r}")
        if self.probe not in PROBES:
            raise CompressorError(f"fishleg.probe must be one of {', '.join(PROBES)}; got {self.probe!r}")
        if self.gradients < self.probe_bank + self.heldout_probes and self.probe == "gradient":
            raise CompressorError(f"fishleg.gradients ({self.gradients}) must be at least probe_bank + "
                                  f"heldout_probes ({self.probe_bank + self.heldout_probes}) with gradient probes")
        _require_group_multiple(self.name, "block", self.block, self.nm, self.pattern)
        self._fits: list[dict[str, Any]] = []

    def builder(self, model, layers, context, gradients):  # type: ignore[no-untyped-def]
        self._fits = []  # one apply's fits: a reused instance must not carry the last apply's rounds (and seeds)
        fvp = FisherVectorProduct(model, layers)
        state: dict[str, FishLegInverse] = {}

        def images(seed: int) -> Iterator[torch.Tensor]:
            for epoch in itertools.count():
                for x, _ in context.train.batches(context.input_size, self.fisher_batch, shuffle=True,
                                                  seed=seed + 7919 * (epoch + 1)):
                    yield x

        stream = images(context.seed)
        heldout_images = list(itertools.islice(images(context.seed + 104729), self.heldout_probes))

        def product(v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return fvp(next(stream), v)

        def fixed_product(x: torch.Tensor) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
            return lambda v: fvp(x, v)

        heldout_products = [fixed_product(x) for x in heldout_images]

        def build(keep: dict[str, torch.Tensor]) -> dict[str, LayerInverse]:
            round_index = len(self._fits)
            kept = self.probe_bank + self.heldout_probes if self.probe == "gradient" else 0
            grads: list[dict[str, torch.Tensor]] = []
            diag = _fisher_diagonal(_keeping(gradients(keep, "the Fisher diagonal and probes"), grads, kept),
                                    self.grad_batch / self.gradients)
            damping = self.layer_damping(diag)
            generator = torch.Generator().manual_seed(context.seed + 31 * round_index)
            shapes = {name: tuple(d.shape) for name, d in diag.items()}
            device = next(iter(diag.values())).device
            if self.probe == "gradient":
                fitting = gradient_probes(grads[:self.probe_bank], generator)
                heldout_draw = gradient_probes(grads[self.probe_bank:self.probe_bank + self.heldout_probes],
                                               torch.Generator().manual_seed(context.seed + 17 + round_index))
            else:
                fitting = gaussian_probes(shapes, generator, device)
                heldout_draw = gaussian_probes(shapes, torch.Generator().manual_seed(context.seed + 17 + round_index),
                                               device)
            heldout = [heldout_draw() for _ in range(self.heldout_probes)]
            del grads
            first = "q" not in state
            warm = first and self.warm_start and model in _LEARNED_FACTORS
            if first:
                state["q"] = FishLegInverse(diag, damping, self.block)
                if warm:
                    state["q"].load_factors(_LEARNED_FACTORS[model])
                    state["q"].reanchor(diag, damping)
            else:
                state["q"].reanchor(diag, damping)
            q = state["q"]
            steps = self.aux_steps if first and not warm else self.refine_steps
            with context.progress(f"fishleg: auxiliary loss ({'fit' if first else 'refit'})", steps) as advance:
                values = fit(q, product, steps, probes=fitting, lr=self.aux_lr, factor_lr=self.factor_lr,
                             count=self.probes, masks=keep, on_step=lambda *_: advance())
            start = FishLegInverse(diag, damping, self.block)
            fitted_losses = q.layer_losses(heldout_products, heldout, keep)
            start_losses = start.layer_losses(heldout_products, heldout, keep)
            per_layer = {}
            for name in q.layers:
                accepted = fitted_losses[name] < start_losses[name]
                if not accepted:
                    q.layers[name] = start.layers[name]
                per_layer[name] = {"heldout_aux_diagonal": start_losses[name], "heldout_aux_fitted":
                                   fitted_losses[name], "accepted": accepted, "damping": damping[name]}
            accepted_count = sum(info["accepted"] for info in per_layer.values())
            _LEARNED_FACTORS[model] = q.factors()
            self._fits.append({"steps": steps, "warm_start": warm, "aux_loss_first": values[0] if values else None,
                               "aux_loss_last": values[-1] if values else None,
                               "layers_accepted": accepted_count, "layers": len(per_layer),
                               "per_layer": per_layer})
            return dict(q.layers)
        return build

    def extra_record(self) -> dict[str, Any]:
        return {"fishleg": {"fits": self._fits,
                            "accepted_fraction_first_fit": (self._fits[0]["layers_accepted"] / self._fits[0]["layers"]
                                                            if self._fits else None)}}
