"""FishLeg: a learned inverse Fisher Q(λ), fitted by minimizing the auxiliary loss ½uᵀQF_γQu − uᵀQu.

Per layer, with the weight seen as an (out, in) matrix U, Q U = A ⊙ (RᵀR (A ⊙ U) LᵀL): a Kronecker product of
an output factor RᵀR and an input factor LᵀL, between elementwise scalings by A. R and L are block-diagonal (blocks
of at most `block` rows/columns) so that ResNet-sized layers stay cheap. Q starts as the inverse diagonal Fisher
(L = R = I, A = (F_qq + γ)^(-1/2)) and the auxiliary loss, whose minimizer over all Q is F_γ⁻¹ when u ~ N(0, I),
moves it towards the layer's inverse Fisher, off-diagonal terms included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn


def _block_eye(size: int, block: int, device: torch.device) -> torch.Tensor:
    count = -(-size // block)
    return torch.eye(block, device=device).repeat(count, 1, 1)


class KroneckerQ(nn.Module):
    """One layer's Q(λ) = D_A (RᵀR ⊗ LᵀL) D_A with block-diagonal factors; A = exp(log_a) > 0."""

    def __init__(self, shape: tuple[int, int], init_diag: torch.Tensor, block: int = 128) -> None:
        super().__init__()
        self.shape = shape
        out_dim, in_dim = shape
        self.row_block, self.col_block = min(block, out_dim), min(block, in_dim)
        self.log_a = nn.Parameter(0.5 * init_diag.detach().float().log().reshape(shape).clone())
        self.r = nn.Parameter(_block_eye(out_dim, self.row_block, init_diag.device))
        self.l = nn.Parameter(_block_eye(in_dim, self.col_block, init_diag.device))

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        """RᵀR applied on the left of x (..., out, in)."""
        out_dim = self.shape[0]
        pad = self.r.shape[0] * self.row_block - out_dim
        x = nn.functional.pad(x, (0, 0, 0, pad)) if pad else x
        blocks = x.reshape(*x.shape[:-2], self.r.shape[0], self.row_block, x.shape[-1])
        y = torch.einsum("bji,bjk,...bkn->...bin", self.r, self.r, blocks)
        return y.reshape(*x.shape[:-2], -1, x.shape[-1])[..., :out_dim, :]

    def _cols(self, x: torch.Tensor) -> torch.Tensor:
        """LᵀL applied on the right of x (..., out, in)."""
        in_dim = self.shape[1]
        pad = self.l.shape[0] * self.col_block - in_dim
        x = nn.functional.pad(x, (0, pad)) if pad else x
        blocks = x.reshape(*x.shape[:-1], self.l.shape[0], self.col_block)
        y = torch.einsum("...bk,bjk,bjc->...bc", blocks, self.l, self.l)
        return y.reshape(*x.shape[:-2], x.shape[-2], -1)[..., :in_dim]

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Q u for u of shape (..., out, in)."""
        a = self.log_a.exp()
        return a * self._cols(self._rows(a * u))

    def diag(self) -> torch.Tensor:
        """diag(Q) in closed form: A_ij² (RᵀR)_ii (LᵀL)_jj."""
        with torch.no_grad():
            rr = (self.r ** 2).sum(dim=1).reshape(-1)[:self.shape[0]]
            ll = (self.l ** 2).sum(dim=1).reshape(-1)[:self.shape[1]]
            return (2 * self.log_a).exp() * rr[:, None] * ll[None, :]

    def mul(self, v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.forward(v.float()).to(v.dtype)

    def group_blocks(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """[Q]_SS for groups in one row: A_ia A_ib (RᵀR)_ii (LᵀL)_ab (zero across column blocks)."""
        with torch.no_grad():
            a = self.log_a.exp()[rows[:, None], cols]
            rr = (self.r ** 2).sum(dim=1).reshape(-1)[rows]
            block, offset = cols // self.col_block, cols % self.col_block
            ll = torch.einsum("bjk,bjc->bkc", self.l, self.l)
            entries = ll[block[:, :, None], offset[:, :, None], offset[:, None, :]]
            same = block[:, :, None] == block[:, None, :]
            entries = torch.where(same, entries, torch.zeros((), dtype=entries.dtype, device=entries.device))
            return a[:, :, None] * a[:, None, :] * rr[:, None, None] * entries


FisherProduct = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]


class FishLegInverse:
    """Q(λ) for a set of layers, fitted on the auxiliary loss with Adam; each layer's part is a `LayerInverse`."""

    def __init__(self, fisher_diag: dict[str, torch.Tensor], damping: float, block: int = 128) -> None:
        self.damping = damping
        self.layers = {name: KroneckerQ(tuple(d.shape), 1.0 / (d + damping), block)
                       for name, d in fisher_diag.items()}
        self.history: list[float] = []

    def parameters(self) -> Iterator[nn.Parameter]:
        for q in self.layers.values():
            yield from q.parameters()

    def snapshot(self) -> list[torch.Tensor]:
        """A copy of every parameter, to restore a fit that made the auxiliary loss worse."""
        return [p.detach().clone() for p in self.parameters()]

    def restore(self, saved: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for p, value in zip(self.parameters(), saved):
                p.copy_(value)

    def aux_step(self, fisher_product: FisherProduct, optimizer: torch.optim.Optimizer, probes: int,
                 masks: dict[str, torch.Tensor] | None = None, generator: torch.Generator | None = None) -> float:
        """One Adam step on A(λ) = ½ vᵀF_γv − uᵀv, v = Qu, averaged over `probes` Gaussian u; returns A."""
        optimizer.zero_grad()
        total = 0.0
        for _ in range(probes):
            u, v = {}, {}
            for name, q in self.layers.items():
                # drawn on the generator's device (CPU), then moved: the same probes on every device
                u[name] = torch.randn(q.shape, generator=generator).to(q.log_a.device)
                if masks is not None and name in masks:
                    u[name] = u[name] * masks[name]
                v[name] = q(u[name])
                if masks is not None and name in masks:
                    v[name] = v[name] * masks[name]
            fv = fisher_product({name: t.detach() for name, t in v.items()})
            surrogate = torch.zeros((), device=next(iter(v.values())).device)
            value = 0.0
            for name in self.layers:
                damped = fv[name].detach() + self.damping * v[name].detach()
                if masks is not None and name in masks:
                    damped = damped * masks[name]
                surrogate = surrogate + (v[name] * (damped - u[name])).sum()
                value += float(0.5 * (v[name].detach() * damped).sum() - (u[name] * v[name].detach()).sum())
            (surrogate / probes).backward()
            total += value
        optimizer.step()
        self.history.append(total / probes)
        return total / probes


def fit(inverse: FishLegInverse, fisher_product: FisherProduct, steps: int, *, lr: float = 1e-2,
        factor_lr: float | None = None, probes: int = 1, masks: dict[str, torch.Tensor] | None = None,
        seed: int = 0, on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Adam on the auxiliary loss for `steps` steps, learning rates decayed to zero on a cosine; returns A per step.

    `lr` moves the elementwise scaling log A, `factor_lr` (default: `lr`) the Kronecker factors R and L. With few
    probes on a large layer the factor gradients are mostly noise, and a random walk of a b×b block grows its
    largest eigenvalue like √b, so large models need a much smaller `factor_lr` than small ones.
    """
    if steps < 1:
        return []
    scales = [q.log_a for q in inverse.layers.values()]
    factors = [p for q in inverse.layers.values() for p in (q.r, q.l)]
    optimizer = torch.optim.Adam([{"params": scales, "lr": lr},
                                  {"params": factors, "lr": lr if factor_lr is None else factor_lr}])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    values = []
    for step in range(steps):
        values.append(inverse.aux_step(fisher_product, optimizer, probes, masks, generator))
        schedule.step()
        if on_step:
            on_step(step, values[-1])
    return values


def aux_loss_optimum(inverse: torch.Tensor) -> float:
    """A* = −½ tr F_γ⁻¹: the auxiliary loss at its minimum, for checking a fit against an exact inverse."""
    return -0.5 * float(torch.trace(inverse))

