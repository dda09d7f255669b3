"""WoodFisher's blocked Woodbury inverse and the diagonal inverse against direct inversion; the matrix layout."""

from __future__ import annotations

import pytest
import torch

from compressor.strategies.second_order.fisher import matrix_to_weight, weight_matrix
from compressor.strategies.second_order.inverse import BlockWoodburyInverse, DiagonalInverse


@pytest.mark.parametrize("chunk", [1, 5, 40])
@pytest.mark.parametrize("block", [4, 7, 24])
def test_woodbury_inverse_matches_torch_linalg_inv_block_by_block(chunk: int, block: int) -> None:
    g = torch.Generator().manual_seed(0)
    shape, m, damping, scale = (4, 6), 40, 1e-3, 8 / 40
    grads = torch.randn(m, *shape, generator=g, dtype=torch.float64)
    inverse = BlockWoodburyInverse(shape, block, damping, dtype=torch.float64)
    for start in range(0, m, chunk):
        inverse.add_gradients(grads[start:start + chunk], scale)
    flat = grads.reshape(m, -1)
    d = flat.shape[1]
    fisher = damping * torch.eye(d, dtype=torch.float64) + scale * flat.T @ flat
    expected = torch.zeros(d, d, dtype=torch.float64)
    for lo in range(0, d, block):
        hi = min(lo + block, d)
        expected[lo:hi, lo:hi] = torch.linalg.inv(fisher[lo:hi, lo:hi])
    assert torch.allclose(inverse.diag().reshape(-1), expected.diagonal(), rtol=1e-10, atol=0)
    v = torch.randn(*shape, generator=g, dtype=torch.float64)
    assert torch.allclose(inverse.mul(v).reshape(-1), expected @ v.reshape(-1), rtol=1e-9, atol=1e-9)
    rows, cols = torch.tensor([0, 2, 3]), torch.tensor([[0, 1, 2, 3], [2, 3, 4, 5], [1, 2, 3, 4]])
    flat_idx = rows[:, None] * shape[1] + cols
    want = expected[flat_idx[:, :, None], flat_idx[:, None, :]]
    assert torch.allclose(inverse.group_blocks(rows, cols), want, rtol=1e-9, atol=1e-12)


def test_diagonal_inverse_is_one_over_damped_fisher() -> None:
    fisher = torch.tensor([[1.0, 2.0], [0.0, 4.0]])
    inverse = DiagonalInverse(fisher, 1.0)
    assert torch.equal(inverse.diag(), 1 / (fisher + 1))
    assert torch.equal(inverse.mul(torch.ones(2, 2)), 1 / (fisher + 1))
    blocks = inverse.group_blocks(torch.tensor([1]), torch.tensor([[0, 1]]))
    assert torch.equal(blocks[0], torch.diag(torch.tensor([1.0, 0.2])))


def test_weight_matrix_puts_input_channels_last_and_round_trips() -> None:
    weight = torch.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    matrix = weight_matrix(weight)
    assert matrix.shape == (2, 12)
    assert matrix[0, :3].tolist() == weight[0, :, 0, 0].tolist()  # consecutive input channels at one position
    assert torch.equal(matrix_to_weight(matrix, weight.shape), weight)
