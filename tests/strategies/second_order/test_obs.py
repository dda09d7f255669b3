"""OBS on an exact quadratic: a linear layer at its least-squares optimum, where the Hessian is Σ⁻¹ ⊗ XᵀX/N."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from compressor.strategies.second_order.inverse import DenseInverse
from compressor.strategies.second_order.obs import global_keep, nm_choice, obs_update, prune_unstructured, saliency
from compressor.strategies.selection import nm_masks


class Quadratic:
    """L(W) = 1/(2N) Σ (y − Wx)ᵀ Σ⁻¹ (y − Wx), at its minimizer W*, with an ill-conditioned input X."""

    def __init__(self, out_dim: int = 4, in_dim: int = 6, samples: int = 200, seed: int = 0,
                 condition: float = 100.0) -> None:
        g = torch.Generator().manual_seed(seed)
        scales = torch.logspace(0, -math.log10(condition), in_dim, dtype=torch.float64)
        self.x = torch.randn(samples, in_dim, generator=g, dtype=torch.float64) * scales
        self.x[:, 1] += 0.9 * self.x[:, 0]  # correlated inputs, so that compensation matters
        w_true = torch.randn(out_dim, in_dim, generator=g, dtype=torch.float64)
        self.y = self.x @ w_true.T + 0.1 * torch.randn(samples, out_dim, generator=g, dtype=torch.float64)
        a = torch.randn(out_dim, out_dim, generator=g, dtype=torch.float64)
        self.sigma_inv = a @ a.T / out_dim + torch.eye(out_dim, dtype=torch.float64)
        cov = self.x.T @ self.x / samples
        self.w_star = torch.linalg.solve(cov, self.x.T @ self.y / samples).T
        self.hessian = torch.kron(self.sigma_inv, cov)
        self.shape = (out_dim, in_dim)

    def loss(self, w: torch.Tensor) -> float:
        r = self.y - self.x @ w.T
        return float(0.5 * torch.einsum("ni,ij,nj->", r, self.sigma_inv, r) / len(self.x))

    def best_removal(self, pruned: list[int]) -> torch.Tensor:
        """Brute force: re-fit the remaining weights by solving the constrained least squares through H directly."""
        d = self.hessian.shape[0]
        free = [i for i in range(d) if i not in pruned]
        delta = torch.zeros(d, dtype=torch.float64)
        delta[pruned] = -self.w_star.reshape(-1)[pruned]
        h_ff, h_fp = self.hessian[free][:, free], self.hessian[free][:, pruned]
        delta[free] = -torch.linalg.solve(h_ff, h_fp @ delta[pruned])
        return self.w_star + delta.reshape(self.shape)


@pytest.fixture(scope="module")
def quad() -> Quadratic:
    return Quadratic()


def test_the_quadratic_is_at_its_optimum_with_the_stated_hessian(quad: Quadratic) -> None:
    w = quad.w_star.clone().requires_grad_(True)
    r = quad.y - quad.x @ w.T
    loss = 0.5 * torch.einsum("ni,ij,nj->", r, quad.sigma_inv, r) / len(quad.x)
    (grad,) = torch.autograd.grad(loss, w, create_graph=True)
    assert grad.abs().max() < 1e-10
    hessian = torch.stack([torch.autograd.grad(g, w, retain_graph=True)[0].reshape(-1) for g in grad.reshape(-1)])
    assert torch.allclose(hessian, quad.hessian, atol=1e-10)


def test_obs_picks_the_brute_force_optimal_weight_and_predicts_its_loss(quad: Quadratic) -> None:
    inverse = DenseInverse.from_fisher(quad.hessian, quad.shape)
    rho = saliency(quad.w_star, inverse).reshape(-1)
    base = quad.loss(quad.w_star)
    brute = torch.tensor([quad.loss(quad.best_removal([q])) - base for q in range(rho.numel())],
                         dtype=torch.float64)
    assert int(rho.argmin()) == int(brute.argmin())
    assert torch.allclose(rho, brute, rtol=1e-8, atol=1e-12)
    q = int(rho.argmin())
    pruned = torch.zeros(quad.shape, dtype=torch.bool).reshape(-1)
    pruned[q] = True
    updated = quad.w_star + obs_update(quad.w_star, inverse, pruned.reshape(quad.shape))
    assert abs(float(updated.reshape(-1)[q])) < 1e-12
    assert quad.loss(updated) - base == pytest.approx(float(rho[q]), rel=1e-8)
    assert torch.allclose(updated, quad.best_removal([q]), atol=1e-10)


def test_obs_removes_less_loss_than_magnitude_pruning(quad: Quadratic) -> None:
    base = quad.loss(quad.w_star)
    for count in (1, 3, 6):
        layer = torch.nn.Linear(quad.shape[1], quad.shape[0], bias=False).double()
        with torch.no_grad():
            layer.weight.copy_(quad.w_star)
        build = lambda keep: {"fc": DenseInverse.from_fisher(quad.hessian, quad.shape)}  # noqa: E731
        amount = count / layer.weight.numel()
        keep, steps = prune_unstructured({"fc": layer}, amount, build, steps=count)
        obs_loss = quad.loss(layer.weight.detach()) - base
        magnitude = quad.w_star.clone()
        magnitude.reshape(-1)[quad.w_star.abs().reshape(-1).argsort()[:count]] = 0.0
        magnitude_loss = quad.loss(magnitude) - base
        assert int((~keep["fc"]).sum()) == count and int((layer.weight == 0).sum()) == count
        assert obs_loss < magnitude_loss
        assert len(steps) == count and steps[0].pruned == 1


def test_group_update_equals_the_constrained_least_squares_solution(quad: Quadratic) -> None:
    inverse = DenseInverse.from_fisher(quad.hessian, quad.shape)
    pruned_flat = [2, 3]
    group = torch.tensor(pruned_flat)
    block = inverse.inverse[group][:, group]
    w = quad.w_star.reshape(-1)
    z = torch.zeros_like(w)
    z[group] = torch.linalg.solve(block, w[group])
    updated = quad.w_star + inverse.mul(-z.reshape(quad.shape))
    predicted = 0.5 * float(w[group] @ torch.linalg.solve(block, w[group]))
    assert torch.allclose(updated, quad.best_removal(pruned_flat), atol=1e-10)
    assert quad.loss(updated) - quad.loss(quad.w_star) == pytest.approx(predicted, rel=1e-8)


def test_nm_choice_equals_brute_force_over_every_pair(quad: Quadratic) -> None:
    wide = Quadratic(out_dim=3, in_dim=8, seed=1)
    inverse = DenseInverse.from_fisher(wide.hessian, wide.shape)
    keep, costs, update = nm_choice(wide.w_star, inverse, 2, 4)
    flat_w = wide.w_star.reshape(-1)
    for g, (row, start) in enumerate(itertools.product(range(3), (0, 4))):
        members = [row * 8 + start + j for j in range(4)]
        options = {}
        for pair in itertools.combinations(members, 2):
            idx = torch.tensor(pair)
            block = inverse.inverse[idx][:, idx]
            options[pair] = 0.5 * float(flat_w[idx] @ torch.linalg.solve(block, flat_w[idx]))
        best = min(options, key=options.get)
        pruned = {row * 8 + start + j for j in range(4) if not keep[row, start + j]}
        assert pruned == set(best)
        assert float(costs[g]) == pytest.approx(options[best], rel=1e-9)
    groups = keep.reshape(-1, 4)
    assert bool((groups.sum(dim=1) == 2).all())
    assert keep.shape == nm_masks(wide.w_star.abs(), 2, 4).shape


def test_global_keep_is_monotone_and_counts_already_pruned_weights() -> None:
    scores = {"a": torch.tensor([[0.1, 5.0], [3.0, 4.0]]), "b": torch.tensor([[0.2, 0.05]])}
    keep = {"a": torch.tensor([[True, True], [False, True]]), "b": torch.ones(1, 2, dtype=torch.bool)}
    new = global_keep(scores, keep, 3)
    assert not new["a"][1, 0]  # already pruned stays pruned despite its high score
    assert (~new["a"]).sum() + (~new["b"]).sum() == 3
    assert not new["b"][0, 1] and not new["a"][0, 0] and new["b"][0, 0]
