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


def test_fractional_epochs_run_that_share_of_the_steps(tiny_net: nn.Module, digits: Dataset) -> None:
    from compressor.train import steps_per_epoch

    record = train(tiny_net, digits.train, 8, TrainConfig(epochs=0.25, batch_size=32), show_progress=False)
    assert record["steps"] == -(-steps_per_epoch(len(digits.train), 32) // 4)
    record = train(tiny_net, digits.train, 8, TrainConfig(epochs=1.5, batch_size=32), show_progress=False)
    assert record["steps"] == -(-steps_per_epoch(len(digits.train), 32) * 3 // 2)


def test_divergence_stops_with_a_clear_message(tiny_net: nn.Module, digits: Dataset) -> None:
    with pytest.raises(CompressorError, match="training diverged: loss is .* at epoch 1, step"):
        train(tiny_net, digits.train, 8, TrainConfig(epochs=1, lr=1e6), show_progress=False)


def test_batchnorm_recalibration_estimates_running_stats_from_data(tiny_net: nn.Module, digits: Dataset) -> None:
    from compressor.train import recalibrate_batchnorm

    tiny_net.bn.running_mean.fill_(100.0)
    weights = tiny_net.stem.weight.clone()
    seen = recalibrate_batchnorm(tiny_net, digits.train, 8, batches=2, batch_size=64)
    assert seen == 128 and tiny_net.bn.momentum == 0.1 and not tiny_net.training
    x, _ = next(digits.train.batches(8, 2000))
    with torch.no_grad():
        stem = tiny_net.stem(x)
    assert torch.allclose(tiny_net.bn.running_mean, stem.mean(dim=(0, 2, 3)), atol=0.1)
    assert torch.equal(tiny_net.stem.weight, weights)


def test_zero_masks_cover_exactly_the_zeroed_weights(tiny_net: nn.Module) -> None:
    from compressor.train import zero_masks

    with torch.no_grad():
        tiny_net.conv1.weight[0] = 0
    masks = zero_masks(tiny_net)
    assert set(masks) == {"conv1.weight"} and int((~masks["conv1.weight"]).sum()) == tiny_net.conv1.weight[0].numel()
