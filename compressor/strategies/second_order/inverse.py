"""Inverse-Fisher approximations of one layer, behind one small interface that OBS pruning needs.

A layer's weight is a matrix (out, in) (see `fisher.weight_matrix`); its flat index is row * in + column. Every
implementation answers three questions about F⁻¹ restricted to that layer: its diagonal, its product with a
weight-shaped vector, and its small blocks over groups of weights in one row (for group OBS and N:M patterns).
"""

from __future__ import annotations

from typing import Protocol

import torch


class LayerInverse(Protocol):
    """F⁻¹ of one layer's weights, or an approximation of it."""

    shape: tuple[int, int]

    def diag(self) -> torch.Tensor:
        """[F⁻¹]_qq for every weight, as an (out, in) matrix."""
        ...

    def mul(self, v: torch.Tensor) -> torch.Tensor:
        """F⁻¹ v for an (out, in) matrix v."""
        ...

    def group_blocks(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """[F⁻¹]_SS for groups S = {(rows[g], cols[g, a])}: rows (G,), cols (G, k) -> (G, k, k)."""
        ...


class DenseInverse:
    """An explicit F⁻¹ matrix over the flat weights of one layer; exact, for small layers and tests."""

    def __init__(self, inverse: torch.Tensor, shape: tuple[int, int]) -> None:
        self.inverse, self.shape = inverse, shape

    @classmethod
    def from_fisher(cls, fisher: torch.Tensor, shape: tuple[int, int], damping: float = 0.0) -> DenseInverse:
        """Invert a dense Fisher (plus damping γI)."""
        eye = torch.eye(fisher.shape[0], dtype=fisher.dtype, device=fisher.device)
        return cls(torch.linalg.inv(fisher + damping * eye), shape)

    def diag(self) -> torch.Tensor:
        return self.inverse.diagonal().reshape(self.shape)

    def mul(self, v: torch.Tensor) -> torch.Tensor:
        return (self.inverse @ v.reshape(-1).to(self.inverse.dtype)).reshape(self.shape).to(v.dtype)

    def group_blocks(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        flat = rows[:, None] * self.shape[1] + cols
        return self.inverse[flat[:, :, None], flat[:, None, :]]


class DiagonalInverse:
    """1 / (diag F + γ): the inverse of the diagonal Fisher, which turns OBS into Optimal Brain Damage."""

    def __init__(self, fisher_diag: torch.Tensor, damping: float) -> None:
        self.inverse_diag = 1.0 / (fisher_diag + damping)
        self.shape = tuple(fisher_diag.shape)

    def diag(self) -> torch.Tensor:
        return self.inverse_diag

    def mul(self, v: torch.Tensor) -> torch.Tensor:
        return v * self.inverse_diag.to(v.dtype)

    def group_blocks(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return torch.diag_embed(self.inverse_diag[rows[:, None], cols])


class BlockWoodburyInverse:
    """WoodFisher: F⁻¹ block-diagonal over blocks of B consecutive flat weights, built by Woodbury updates.

    Starts at γ⁻¹ I and folds in gradients with F ← F + c Σ g gᵀ, one rank-k Woodbury step per chunk of k
    gradients (k = 1 is the classical rank-one recursion; larger k is the same identity, with fewer passes over
    memory): F⁻¹ ← F⁻¹ − F⁻¹U (I/c + UᵀF⁻¹U)⁻¹ UᵀF⁻¹ in every block. Memory: d·B numbers.
    """

    def __init__(self, shape: tuple[int, int], block_size: int, damping: float,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> None:
        if block_size < 1 or damping <= 0:
            raise ValueError(f"block_size must be ≥ 1 and damping > 0; got {block_size}, {damping}")
        self.shape = shape
        self.numel = shape[0] * shape[1]
        self.block = min(block_size, self.numel)
        self.blocks = -(-self.numel // self.block)
        eye = torch.eye(self.block, dtype=dtype, device=device)
        self.inverse = eye.repeat(self.blocks, 1, 1) / damping

    def _blocked(self, v: torch.Tensor) -> torch.Tensor:
        """(..., out, in) -> (..., blocks, B), zero-padded at the end."""
        flat = v.reshape(*v.shape[:-2], self.numel).to(self.inverse.dtype)
        pad = self.blocks * self.block - self.numel
        if pad:
            flat = torch.nn.functional.pad(flat, (0, pad))
        return flat.reshape(*v.shape[:-2], self.blocks, self.block)

    def add_gradients(self, gradients: torch.Tensor, scale: float) -> None:
        """Fold in F += scale · Σ_i g_i g_iᵀ for gradients (k, out, in)."""
        u = self._blocked(gradients).permute(1, 2, 0)  # (blocks, B, k)
        v = self.inverse @ u
        inner = u.transpose(1, 2) @ v
        inner.diagonal(dim1=1, dim2=2).add_(1.0 / scale)
        chol = torch.linalg.cholesky(inner)
        self.inverse -= v @ torch.cholesky_solve(v.transpose(1, 2), chol)

    def diag(self) -> torch.Tensor:
        return self.inverse.diagonal(dim1=1, dim2=2).reshape(-1)[:self.numel].reshape(self.shape)

    def mul(self, v: torch.Tensor) -> torch.Tensor:
        product = (self.inverse @ self._blocked(v)[..., None])[..., 0]
        return product.reshape(-1)[:self.numel].reshape(self.shape).to(v.dtype)

    def group_blocks(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        flat = rows[:, None] * self.shape[1] + cols
        block, offset = flat // self.block, flat % self.block
        same = block[:, :, None] == block[:, None, :]
        entries = self.inverse[block[:, :, None], offset[:, :, None], offset[:, None, :]]
        return torch.where(same, entries, torch.zeros((), dtype=entries.dtype, device=entries.device))
