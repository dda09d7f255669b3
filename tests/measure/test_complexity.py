"""Complexity: per-layer MACs follow weights x output positions; zero weights are skipped in the sparse count."""

from __future__ import annotations

import torch
from torch import nn

from compressor.measure.complexity import complexity, dense_macs, layer_table


def _plain() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Conv2d(8, 4, 3, stride=2, padding=1,
                         bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, 5, bias=False))


def test_layer_macs_sum_to_torch_pruning_count_on_a_bias_free_net() -> None:
    model = _plain()
    rows = layer_table(model, 3, 16)
    assert [r["macs"] for r in rows] == [3 * 8 * 9 * 16 * 16, 8 * 4 * 9 * 8 * 8, 256 * 5]
    assert sum(r["macs"] for r in rows) == dense_macs(model, 3, 16)


def test_sparse_macs_count_only_nonzero_weights() -> None:
    model = _plain()
    with torch.no_grad():
        model[0].weight[:4] = 0  # half the filters of the first conv
    cx = complexity(model, 3, 16)
    first = cx["layers"][0]
    assert first["sparsity"] == 0.5 and first["macs_sparse"] == first["macs"] // 2
    assert cx["macs"] - cx["macs_sparse"] == first["macs"] // 2
    assert cx["params_total"] - cx["params_nonzero"] == 4 * 3 * 9
