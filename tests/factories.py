"""An architecture factory as a user would write one, importable as `factories:small_cnn` in the tests."""

from __future__ import annotations

from torch import nn


def small_cnn(num_classes: int, in_channels: int) -> nn.Module:
    """A plain CNN with BatchNorm and a linear head, for any channel and class count."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
