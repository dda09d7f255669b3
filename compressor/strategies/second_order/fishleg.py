"""FishLeg: a learned inverse Fisher Q(λ), fitted by minimizing the auxiliary loss ½uᵀQF_γQu − uᵀQu.

Per layer, with the weight seen as an (out, in) matrix U, Q U = A ⊙ (RᵀR (A ⊙ U) LᵀL): a Kronecker product of
an output factor RᵀR and an input factor LᵀL, between elementwise scalings by A. R and L are block-diagonal (blocks
of at most `block` rows/columns) so that ResNet-sized layers stay cheap. Q starts as the inverse of the Fisher's
diagonal (L = R = I, A = (F_qq + γ_l)^(-1/2)); the auxiliary loss, minimized over all Q by F_γ⁻¹ whatever the
probes' covariance, moves it towards the layer's inverse Fisher, off-diagonal terms included.

Probes u are drawn per layer and independently across layers, so cross-layer Fisher terms vanish in expectation
and each layer's share of the loss, A_l = ½ v_lᵀ(F_γ v)_l − u_lᵀv_l, judges that layer's Q on its own. A fit is
kept per layer only where it beats the diagonal start on fixed held-out probes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

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

    def _factor_diagonals(self) -> tuple[torch.Tensor, torch.Tensor]:
        rr = (self.r ** 2).sum(dim=1).reshape(-1)[:self.shape[0]]
        ll = (self.l ** 2).sum(dim=1).reshape(-1)[:self.shape[1]]
        return rr, ll

    def diag(self) -> torch.Tensor:
        """diag(Q) in closed form: A_ij² (RᵀR)_ii (LᵀL)_jj."""
        with torch.no_grad():
            rr, ll = self._factor_diagonals()
            return (2 * self.log_a).exp() * rr[:, None] * ll[None, :]

    def set_diagonal(self, target: torch.Tensor) -> None:
        """Rescale A so that diag(Q) equals `target`, keeping the learned factors R and L (their correlations)."""
        with torch.no_grad():
            rr, ll = self._factor_diagonals()
            self.log_a.copy_(0.5 * (target.float() / (rr[:, None] * ll[None, :]).clamp_min(1e-30)).log())

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


Vectors = dict[str, torch.Tensor]
FisherProduct = Callable[[Vectors], Vectors]
ProbeSource = Callable[[], Vectors]


def gaussian_probes(shapes: dict[str, tuple[int, int]], generator: torch.Generator,
                    device: torch.device | str = "cpu") -> ProbeSource:
    """u ~ N(0, I) per layer; the auxiliary loss then weighs every direction alike."""
    def draw() -> Vectors:
        # drawn on the generator's device (CPU), then moved: the same probes on every device
        return {name: torch.randn(shape, generator=generator).to(device) for name, shape in shapes.items()}
    return draw


def gradient_probes(bank: Sequence[Vectors], generator: torch.Generator) -> ProbeSource:
    """u_l = one minibatch gradient from `bank`, drawn for each layer independently and scaled to RMS 1.

    With gradients of labels sampled from the model, E[u_l u_lᵀ] ∝ F_ll: directions weigh by gradient energy, and
    independent draws across layers make the cross-layer terms vanish in expectation.
    """
    names = list(bank[0])

    def draw() -> Vectors:
        picks = torch.randint(len(bank), (len(names),), generator=generator).tolist()
        out = {}
        for name, pick in zip(names, picks):
            u = bank[pick][name].float()
            out[name] = u * (u.numel() ** 0.5 / u.norm().clamp_min(1e-30))
        return out
    return draw


class FishLegInverse:
    """Q(λ) for a set of layers, fitted on the auxiliary loss with Adam; each layer's part is a `LayerInverse`."""

    def __init__(self, fisher_diag: Vectors, damping: dict[str, float] | float, block: int = 128) -> None:
        self.damping = (dict(damping) if isinstance(damping, dict)
                        else {name: float(damping) for name in fisher_diag})
        self.layers = {name: KroneckerQ(tuple(d.shape), 1.0 / (d + self.damping[name]), block)
                       for name, d in fisher_diag.items()}
        self.history: list[float] = []

    def parameters(self) -> Iterator[nn.Parameter]:
        for q in self.layers.values():
            yield from q.parameters()

    def factors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """A copy of every layer's Kronecker factors (R, L): what a later fit may start from."""
        return {name: (q.r.detach().clone(), q.l.detach().clone()) for name, q in self.layers.items()}

    def load_factors(self, factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Start from earlier factors where a layer's shapes still match (diag(Q) must be re-anchored after)."""
        with torch.no_grad():
            for name, q in self.layers.items():
                if name in factors and factors[name][0].shape == q.r.shape and factors[name][1].shape == q.l.shape:
                    q.r.copy_(factors[name][0])
                    q.l.copy_(factors[name][1])

    def reanchor(self, fisher_diag: Vectors, damping: dict[str, float]) -> None:
        """A new Fisher diagonal and damping: diag(Q) is reset to 1 / (F_qq + γ_l), the learned factors kept."""
        self.damping = dict(damping)
        for name, q in self.layers.items():
            q.set_diagonal(1.0 / (fisher_diag[name] + self.damping[name]))

    def _terms(self, fisher_product: FisherProduct, u: Vectors, masks: Vectors | None
               ) -> tuple[Vectors, Vectors, Vectors]:
        """v = Qu (masked), F_γ v (detached, masked) and the masked u."""
        u, v = dict(u), {}
        for name, q in self.layers.items():
            if masks is not None and name in masks:
                u[name] = u[name] * masks[name]
            v[name] = q(u[name])
            if masks is not None and name in masks:
                v[name] = v[name] * masks[name]
        fv = fisher_product({name: t.detach() for name, t in v.items()})
        damped = {}
        for name in self.layers:
            damped[name] = fv[name].detach() + self.damping[name] * v[name].detach()
            if masks is not None and name in masks:
                damped[name] = damped[name] * masks[name]
        return u, v, damped

    def aux_step(self, fisher_product: FisherProduct, optimizer: torch.optim.Optimizer, probes: ProbeSource,
                 count: int, masks: Vectors | None = None) -> float:
        """One Adam step on A(λ) = Σ_l ½ v_lᵀ(F_γ v)_l − u_lᵀv_l, v = Qu, averaged over `count` probes; returns A."""
        optimizer.zero_grad()
        total = 0.0
        for _ in range(count):
            u, v, damped = self._terms(fisher_product, probes(), masks)
            # d A / d v = F_γ v − u: a surrogate whose gradient in λ is Jᵀ(F_γ v − u)
            surrogate = sum((v[name] * (damped[name] - u[name])).sum() for name in self.layers)
            (surrogate / count).backward()
            total += sum(float(0.5 * (v[n].detach() * damped[n]).sum() - (u[n] * v[n].detach()).sum())
                         for n in self.layers)
        optimizer.step()
        self.history.append(total / count)
        return total / count

    def layer_losses(self, products: Sequence[FisherProduct], probes: Sequence[Vectors],
                     masks: Vectors | None = None) -> dict[str, float]:
        """Each layer's auxiliary loss A_l, averaged over fixed (product, probe) pairs: held-out judging."""
        totals = dict.fromkeys(self.layers, 0.0)
        with torch.no_grad():
            for product, u in zip(products, probes):
                u, v, damped = self._terms(product, u, masks)
                for name in self.layers:
                    totals[name] += float(0.5 * (v[name] * damped[name]).sum() - (u[name] * v[name]).sum())
        return {name: value / len(probes) for name, value in totals.items()}


def fit(inverse: FishLegInverse, fisher_product: FisherProduct, steps: int, *, probes: ProbeSource,
        lr: float = 1e-2, factor_lr: float | None = None, count: int = 1, masks: Vectors | None = None,
        on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Adam on the auxiliary loss for `steps` steps, learning rates decayed to zero on a cosine; returns A per step.

    `lr` moves the elementwise scaling log A, `factor_lr` (default: `lr`) the Kronecker factors R and L. With few
    probes on a large layer the factor gradients are mostly noise, and a random walk of a b×b block grows its
    largest eigenvalue like √b, so large models need a much smaller `factor_lr` than small ones.
    """
    if steps < 1:
        return []
    scales = [q.log_a for q in inverse.layers.values()]
    factors = [p for q in inverse.layers.values() for p in (q.r, q.l)]
    groups = [{"params": factors, "lr": lr if factor_lr is None else factor_lr}]
    if lr > 0:
        groups.append({"params": scales, "lr": lr})
    optimizer = torch.optim.Adam(groups)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    values = []
    for step in range(steps):
        values.append(inverse.aux_step(fisher_product, optimizer, probes, count, masks))
        schedule.step()
        if on_step:
            on_step(step, values[-1])
    return values


def aux_loss_optimum(inverse: torch.Tensor) -> float:
    """A* = −½ tr F_γ⁻¹: the auxiliary loss at its minimum for u ~ N(0, I), to check a fit against an exact inverse."""
    return -0.5 * float(torch.trace(inverse))
