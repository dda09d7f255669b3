"""nm: every group of M consecutive input weights keeps exactly N, the N largest."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from compressor.errors import CompressorError
from compressor.strategies.registry import build_strategy
from compressor.strategies.selection import nm_masks


@pytest.mark.parametrize("n, m", [(2, 4), (1, 4), (4, 8)])
def test_every_group_of_m_has_exactly_n_nonzeros(tiny_net: nn.Module, n: int, m: int) -> None:
    record = build_strategy("nm", {"n": n, "m": m}).apply(tiny_net, None).record
    for name in ("conv1", "conv2", "hidden"):
        weight = tiny_net.get_submodule(name).weight
        groups = (weight.movedim(1, -1) if weight.ndim > 2 else weight).reshape(-1, m)
        assert torch.all((groups != 0).sum(dim=1) == n), name
    assert record["sparsity"] == pytest.approx(1 - n / m)


def test_kept_weights_are_the_largest_of_each_group_by_brute_force() -> None:
    torch.manual_seed(0)
    score = torch.rand(3, 8, 2, 2)
    keep = nm_masks(score, 2, 4)
    for o, g, y, x in itertools.product(range(3), range(2), range(2), range(2)):
        values = score[o, 4 * g:4 * g + 4, y, x]
        best = max(itertools.combinations(range(4), 2), key=lambda pair: values[list(pair)].sum())
        assert set(torch.nonzero(keep[o, 4 * g:4 * g + 4, y, x]).flatten().tolist()) == set(best)


def test_layers_whose_input_is_not_a_multiple_of_m_are_skipped_and_listed(tiny_net: nn.Module) -> None:
    record = build_strategy("nm", {"include_first_conv": True}).apply(tiny_net, None).record
    assert "stem" in record["skipped_layers"]  # one input channel
    assert torch.all(tiny_net.stem.weight != 0)


def test_bad_pattern_is_refused() -> None:
    with pytest.raises(CompressorError, match="nm needs integers 1 <= n < m; got n=4, m=4"):
        build_strategy("nm", {"n": "4", "m": "4"})
