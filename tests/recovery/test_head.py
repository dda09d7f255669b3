"""Re-fitting the final linear layer: it becomes the linear probe of the current features; zeros stay zero."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressor import CompressorError
from compressor.data import Dataset
from compressor.recovery.head import LinearConfig, fit_linear, penultimate_features, refit_classifier


def _scrambled(tiny_net: nn.Module) -> nn.Module:
    """tiny_net with a random head: its features are fine, its head is not fitted to them."""
    torch.manual_seed(1)
    nn.init.normal_(tiny_net.fc.weight, std=1.0)
    return tiny_net.eval()


def test_the_refitted_head_is_the_linear_probe_of_the_penultimate_features(tiny_net: nn.Module,
                                                                          digits: Dataset) -> None:
    model = _scrambled(tiny_net)
    features, labels = penultimate_features(model, digits.train, 8)
    assert features.shape == (len(digits.train), model.fc.in_features)
    config = LinearConfig(epochs=5, seed=3)
    expected, _ = fit_linear(features, labels, 10, config)
    record = refit_classifier(model, digits.train, 8, config)
    assert torch.allclose(model.fc.weight, expected.weight) and torch.allclose(model.fc.bias, expected.bias)
    assert record["layer"] == "fc" and record["images"] == len(digits.train)
    assert record["train_accuracy_after"] > record["train_accuracy_before"] + 0.2


def test_pruned_head_weights_stay_zero(tiny_net: nn.Module, digits: Dataset) -> None:
    model = _scrambled(tiny_net)
    with torch.no_grad():
        model.fc.weight[:, ::2] = 0.0
    zeros = model.fc.weight == 0
    refit_classifier(model, digits.train, 8, LinearConfig(epochs=3))
    assert bool((model.fc.weight[zeros] == 0).all()) and bool((model.fc.weight[~zeros] != 0).any())


def test_a_model_without_a_linear_head_is_one_clear_error(digits: Dataset) -> None:
    model = nn.Sequential(nn.Conv2d(1, 10, 8), nn.Flatten())
    with pytest.raises(CompressorError, match="ends in nn.Linear; Sequential has none"):
        refit_classifier(model, digits.train, 8)
