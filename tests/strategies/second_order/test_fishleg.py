"""FishLeg's learned Q on a layer whose Fisher is exactly Kronecker, and the exact GGN product it is fitted with."""

from __future__ import annotations

import pytest
import torch

from compressor.strategies.second_order.fisher import FisherVectorProduct, softmax_output_hessian
from compressor.strategies.second_order.fishleg import FishLegInverse, KroneckerQ, aux_loss_optimum, fit
from compressor.strategies.second_order.inverse import DenseInverse
from compressor.strategies.second_order.obs import global_keep, saliency

from .test_obs import Quadratic


def _linear(weight: torch.Tensor) -> torch.nn.Linear:
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer


def test_gauss_newton_product_is_exact_for_gaussian_and_softmax_outputs() -> None:
    quad = Quadratic(out_dim=3, in_dim=5, seed=2)
    layer = _linear(quad.w_star)
    fvp = FisherVectorProduct(layer, {"fc": layer}, output_hessian=lambda logits, v: v @ quad.sigma_inv)
    v = torch.randn(3, 5, dtype=torch.float64)
    assert torch.allclose(fvp(quad.x, {"fc": v})["fc"].reshape(-1), quad.hessian @ v.reshape(-1), atol=1e-12)

    softmax = FisherVectorProduct(layer, {"fc": layer}, output_hessian=softmax_output_hessian)
    p = torch.softmax(quad.x @ quad.w_star.T, dim=1)
    ggn = sum(torch.kron(torch.diag(pi) - torch.outer(pi, pi), torch.outer(xi, xi)) for pi, xi in zip(p, quad.x))
    ggn = ggn / len(quad.x)
    assert torch.allclose(softmax(quad.x, {"fc": v})["fc"].reshape(-1), ggn @ v.reshape(-1), atol=1e-12)


def test_kronecker_q_diag_and_blocks_match_its_dense_matrix() -> None:
    torch.manual_seed(0)
    q = KroneckerQ((5, 7), torch.rand(5, 7) + 0.5, block=3)
    with torch.no_grad():
        for p in (q.r, q.l, q.log_a):
            p.add_(0.3 * torch.randn_like(p))
    dense = torch.stack([q.mul(e.reshape(5, 7)).reshape(-1) for e in torch.eye(35)], dim=1)
    assert torch.allclose(dense, dense.T, atol=1e-5)
    assert torch.linalg.eigvalsh(dense.double()).min() > -1e-5
    assert torch.allclose(q.diag().reshape(-1), dense.diagonal(), rtol=1e-5)
    rows, cols = torch.tensor([0, 4, 2]), torch.tensor([[0, 1, 2, 3], [3, 4, 5, 6], [2, 3, 4, 5]])
    flat = rows[:, None] * 7 + cols
    assert torch.allclose(q.group_blocks(rows, cols), dense[flat[:, :, None], flat[:, None, :]], atol=1e-5)


def test_fishleg_fit_reaches_the_inverse_fisher_of_a_kronecker_layer() -> None:
    quad = Quadratic(out_dim=5, in_dim=6, seed=3, condition=10.0)
    layer = _linear(quad.w_star)
    fvp = FisherVectorProduct(layer, {"fc": layer}, output_hessian=lambda logits, v: v @ quad.sigma_inv)
    damping = 1e-3
    exact = torch.linalg.inv(quad.hessian + damping * torch.eye(30, dtype=torch.float64))
    inverse = FishLegInverse({"fc": quad.hessian.diagonal().reshape(5, 6)}, damping)
    start_error = (inverse.layers["fc"].diag().double().reshape(-1) / exact.diagonal() - 1).abs().max()
    values = fit(inverse, lambda v: fvp(quad.x, v), steps=600, lr=1e-2, probes=8)
    error = (inverse.layers["fc"].diag().double().reshape(-1) / exact.diagonal() - 1).abs().max()
    assert start_error > 0.5, "the diagonal initialization alone must be far from F⁻¹ for this test to mean much"
    assert error < 0.05
    assert sum(values[-100:]) / 100 == pytest.approx(aux_loss_optimum(exact), rel=0.05)
    learned = saliency(quad.w_star, inverse.layers["fc"])
    optimal = saliency(quad.w_star, DenseInverse(exact, (5, 6)))
    all_kept = {"fc": torch.ones(5, 6, dtype=torch.bool)}
    same = global_keep({"fc": learned}, all_kept, 15)["fc"] == global_keep({"fc": optimal}, all_kept, 15)["fc"]
    assert same.float().mean() >= 0.9
