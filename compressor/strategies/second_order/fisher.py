"""The Fisher of a classifier's prunable weights: sampled gradients (empirical Fisher) and exact GGN products.

Every curvature object sees a layer's weight as a matrix (out, in) with the input dimension last, in the order
(kh, kw, c_in) for convolutions, so that groups of consecutive columns are groups of consecutive input channels,
the groups `nm_masks` uses.

Scale: gradients are means over minibatches of `b` samples; at a trained point their covariance is F / b, so the
empirical Fisher is estimated as (b / m) Σ g gᵀ over m minibatches. Together with the exact GGN product (the mean
over samples of Jᵀ H J) every method works on the Fisher of the per-sample mean loss, and one damping γ means the
same thing for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, jvp, vjp

OutputHessian = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def weight_matrix(weight: torch.Tensor) -> torch.Tensor:
    """The (out, in) matrix view of a conv or linear weight, input channels last."""
    return weight.movedim(1, -1).reshape(weight.shape[0], -1) if weight.ndim > 2 else weight


def matrix_to_weight(matrix: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Inverse of `weight_matrix` for a weight of `shape`."""
    if len(shape) <= 2:
        return matrix.reshape(shape)
    moved = (shape[0], *shape[2:], shape[1])
    return matrix.reshape(moved).movedim(-1, 1)


def softmax_output_hessian(logits: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(diag p − p pᵀ) v per sample: the Hessian of cross-entropy in the logits, applied to v."""
    p = torch.softmax(logits.detach(), dim=-1)
    return p * v - p * (p * v).sum(dim=-1, keepdim=True)


def sampled_label_loss(seed: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy against labels drawn from the model's own softmax (ignoring the true labels).

    The covariance of these gradients is the Fisher of the model's predictive distribution, which for softmax
    cross-entropy equals the Gauss-Newton matrix that `FisherVectorProduct` multiplies by; and as they have mean
    zero, b × (minibatch-mean gradient)² estimates its diagonal without bias.
    """
    generator = torch.Generator().manual_seed(seed)

    def loss(logits: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(logits.detach().float(), dim=-1).cpu()
        labels = torch.multinomial(probs, 1, generator=generator)[:, 0].to(logits.device)
        return nn.functional.cross_entropy(logits, labels)
    return loss


def sample_gradients(model: nn.Module, layers: dict[str, nn.Module], batches: Iterable[tuple[torch.Tensor,
                     torch.Tensor]], masks: dict[str, torch.Tensor] | None = None,
                     loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                     ) -> Iterator[dict[str, torch.Tensor]]:
    """Yield, per minibatch, the mean-loss gradient of every layer's weight as a matrix (pruned entries zeroed).

    The model is in eval mode, so BatchNorm uses its running statistics as it will at inference.
    """
    loss_fn = loss_fn or nn.functional.cross_entropy
    model.eval()
    params = {name: layer.weight for name, layer in layers.items()}
    device = next(model.parameters()).device
    for x, y in batches:
        loss = loss_fn(model(x.to(device)), y.to(device))
        grads = torch.autograd.grad(loss, list(params.values()))
        out = {}
        for name, grad in zip(params, grads):
            matrix = weight_matrix(grad.detach())
            if masks is not None and name in masks:
                matrix = matrix * masks[name]
            out[name] = matrix
        yield out


class FisherVectorProduct:
    """Exact generalized Gauss-Newton products F v = mean over samples of Jᵀ H J v, for the prunable weights.

    J is the Jacobian of the model output in the weights (via torch.func forward and reverse mode), H the Hessian
    of the loss in the output (softmax cross-entropy by default; any PSD `output_hessian` for other losses).
    """

    def __init__(self, model: nn.Module, layers: dict[str, nn.Module],
                 output_hessian: OutputHessian = softmax_output_hessian) -> None:
        self.model = model
        self.output_hessian = output_hessian
        module_names = {layer: name for name, layer in model.named_modules()}
        self.keys = {name: f"{module_names[layer]}.weight" if module_names[layer] else "weight"
                     for name, layer in layers.items()}
        self.shapes = {name: tuple(layer.weight.shape) for name, layer in layers.items()}
        self.fixed = {k: v.detach() for k, v in model.named_parameters()}
        self.fixed.update({k: v for k, v in model.named_buffers()})

    def __call__(self, x: torch.Tensor, vectors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """F v for `vectors` given as weight matrices, estimated on the inputs `x` (moved to the weights' device)."""
        self.model.eval()
        primals = {name: self.fixed[key] for name, key in self.keys.items()}
        x = x.to(next(iter(primals.values())).device)
        tangents = {name: matrix_to_weight(vectors[name], self.shapes[name]).to(primals[name])
                    for name in self.keys}

        def forward(weights: dict[str, torch.Tensor]) -> torch.Tensor:
            state = dict(self.fixed)
            state.update({self.keys[name]: w for name, w in weights.items()})
            return functional_call(self.model, state, (x,))

        logits, jv = jvp(forward, (primals,), (tangents,))
        hjv = self.output_hessian(logits, jv) / len(x)
        _, pullback = vjp(forward, primals)
        (product,) = pullback(hjv)
        return {name: weight_matrix(product[name]) for name in self.keys}
