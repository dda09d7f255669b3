"""FishLeg's learned Q on a layer whose Fisher is exactly Kronecker, and the exact GGN product it is fitted with."""

from __future__ import annotations

import pytest
import torch

from compressor.strategies.second_order.fisher import (
    FisherVectorProduct,
    sample_gradients,
    sampled_label_loss,
    softmax_output_hessian,
)
from compressor.strategies.second_order.fishleg import (
    FishLegInverse,
    KroneckerQ,
    aux_loss_optimum,
    fit,
    gaussian_probes,
    gradient_probes,
)
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
    probes = gaussian_probes({"fc": (5, 6)}, torch.Generator().manual_seed(0))
    values = fit(inverse, lambda v: fvp(quad.x, v), steps=600, lr=1e-2, probes=probes, count=8)
    error = (inverse.layers["fc"].diag().double().reshape(-1) / exact.diagonal() - 1).abs().max()
    assert start_error > 0.5, "the diagonal initialization alone must be far from F⁻¹ for this test to mean much"
    assert error < 0.05
    assert sum(values[-100:]) / 100 == pytest.approx(aux_loss_optimum(exact), rel=0.05)
    learned = saliency(quad.w_star, inverse.layers["fc"])
    optimal = saliency(quad.w_star, DenseInverse(exact, (5, 6)))
    all_kept = {"fc": torch.ones(5, 6, dtype=torch.bool)}
    same = global_keep({"fc": learned}, all_kept, 15)["fc"] == global_keep({"fc": optimal}, all_kept, 15)["fc"]
    assert same.float().mean() >= 0.9


def test_sampled_label_gradients_estimate_the_gauss_newton_diagonal() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3, bias=False).double()
    x = torch.randn(64, 4, dtype=torch.float64)
    exact = FisherVectorProduct(layer, {"fc": layer})
    basis = torch.eye(12, dtype=torch.float64)
    ggn_diag = torch.stack([exact(x, {"fc": e.reshape(3, 4)})["fc"].reshape(-1) @ e for e in basis]).reshape(3, 4)
    loss = sampled_label_loss(seed=0)
    batches = [(x[i:i + 8], torch.zeros(8, dtype=torch.long)) for _ in range(400) for i in range(0, 64, 8)]
    squares = sum(g["fc"] ** 2 for g in sample_gradients(layer, {"fc": layer}, batches, loss_fn=loss))
    estimate = 8 * squares / len(batches)
    assert torch.allclose(estimate, ggn_diag, rtol=0.1)
    true_labels = sum(g["fc"] ** 2 for g in sample_gradients(layer, {"fc": layer}, batches)) * 8 / len(batches)
    assert not torch.allclose(true_labels, ggn_diag, rtol=0.1), "with fixed labels it is another matrix"


def test_gradient_probes_draw_each_layer_independently_at_unit_rms() -> None:
    bank = [{"a": torch.full((2, 3), float(i + 1)), "b": torch.full((4, 1), float(i + 1))} for i in range(8)]
    draw = gradient_probes(bank, torch.Generator().manual_seed(0))
    probes = [draw() for _ in range(50)]
    for u in probes:
        for t in u.values():
            assert float(t.pow(2).mean()) == pytest.approx(1.0)
    # the bank entries differ only in scale; signs of independence: the layers' picks are not always the same
    bank_signed = [{"a": torch.full((2, 3), (-1.0) ** i), "b": torch.full((4, 1), (-1.0) ** i)} for i in range(8)]
    draw = gradient_probes(bank_signed, torch.Generator().manual_seed(0))
    agree = [float(u["a"][0, 0] * u["b"][0, 0]) for u in (draw() for _ in range(200))]
    assert 0.3 < sum(a > 0 for a in agree) / len(agree) < 0.7


def test_set_diagonal_keeps_the_factors_and_hits_the_target() -> None:
    torch.manual_seed(1)
    q = KroneckerQ((6, 10), torch.rand(6, 10) + 0.5, block=4)
    with torch.no_grad():
        q.r.add_(0.2 * torch.randn_like(q.r))
        q.l.add_(0.2 * torch.randn_like(q.l))
    r, l_factor = q.r.detach().clone(), q.l.detach().clone()
    target = torch.rand(6, 10) + 0.1
    q.set_diagonal(target)
    assert torch.allclose(q.diag(), target, rtol=1e-5)
    assert torch.equal(q.r, r) and torch.equal(q.l, l_factor)


def test_layer_losses_split_the_auxiliary_loss_by_layer() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), torch.nn.Tanh(), torch.nn.Linear(3, 3, bias=False))
    layers = {"a": model[0], "b": model[2]}
    x = torch.randn(32, 4)
    fvp = FisherVectorProduct(model, layers)
    inverse = FishLegInverse({"a": torch.rand(3, 4), "b": torch.rand(3, 3)}, {"a": 0.1, "b": 0.2})
    u = {"a": torch.randn(3, 4), "b": torch.randn(3, 3)}
    losses = inverse.layer_losses([lambda v: fvp(x, v)], [u])
    v = {name: q.mul(u[name]) for name, q in inverse.layers.items()}
    fv = fvp(x, v)
    for name, gamma in (("a", 0.1), ("b", 0.2)):
        expected = 0.5 * float((v[name] * (fv[name] + gamma * v[name])).sum()) - float((u[name] * v[name]).sum())
        assert losses[name] == pytest.approx(expected, rel=1e-5)
