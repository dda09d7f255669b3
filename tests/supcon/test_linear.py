"""Linear evaluation: standardization folded into the head, features cached once per checkpoint and split."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from compressor.data import Dataset
from supcon.linear import LinearConfig, cached_features, fit_linear


def test_folded_head_classifies_badly_scaled_features():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (600,), generator=generator)
    centers = torch.randn(3, 8, generator=generator) * 3
    scales = torch.tensor([1e3, 1e-3, 1, 50, 0.2, 1, 1e2, 5])
    features = (centers[labels] + torch.randn(600, 8, generator=generator)) * scales + 1e3
    linear, losses = fit_linear(features, labels, 3, LinearConfig(epochs=20, lr=0.1))
    assert losses[-1] < losses[0]
    with torch.no_grad():
        accuracy = (linear(features).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.95


class CountingEncoder(nn.Module):
    """Flatten + a fixed projection, counting how many images it has seen."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(32 * 32, 4)
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += len(x)
        return self.proj(x.flatten(1))


def test_features_are_computed_once_per_key(digits: Dataset, tmp_path):
    small = Dataset(digits.info, digits.train.subset(np.arange(40)), digits.calib, digits.test)
    encoder = CountingEncoder()
    first = cached_features(encoder, small, "train", 32, "key", tmp_path, show_progress=False)
    second = cached_features(encoder, small, "train", 32, "key", tmp_path, show_progress=False)
    assert encoder.seen == 40 and torch.equal(first[0], second[0]) and torch.equal(first[1], small.train.labels)
    cached_features(encoder, small, "train", 32, "other-key", tmp_path, show_progress=False)
    assert encoder.seen == 80
