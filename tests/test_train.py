"""Training loop: learns, holds masked weights at exactly zero, stops clearly on divergence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.train import TrainConfig, train


def test_tiny_net_learns_digits(tiny_net: nn.Module, digits: Dataset) -> None:
    before = evaluate(torch_forward(tiny_net), digits.test, 8)["accuracy"]
    train(tiny_net, digits.train, 8, TrainConfig(epochs=4, lr=0.2), show_progress=False)
    after = evaluate(torch_forward(tiny_net), digits.test, 8)["accuracy"]
    assert after > max(0.5, before + 0.3)


def test_masked_weights_stay_exactly_zero(tiny_net: nn.Module, digits: Dataset) -> None:
    keep = torch.rand_like(tiny_net.conv1.weight) > 0.5
    with torch.no_grad():
        tiny_net.conv1.weight.mul_(keep)
    train(tiny_net, digits.train, 8, TrainConfig(epochs=1), masks={"conv1.weight": keep}, show_progress=False)
    assert torch.all(tiny_net.conv1.weight[~keep] == 0)
    assert torch.all(tiny_net.conv1.weight[keep] != 0)


def test_divergence_stops_with_a_clear_message(tiny_net: nn.Module, digits: Dataset) -> None:
    with pytest.raises(CompressorError, match="training diverged: loss is .* at epoch 1, step"):
        train(tiny_net, digits.train, 8, TrainConfig(epochs=1, lr=1e6), show_progress=False)
