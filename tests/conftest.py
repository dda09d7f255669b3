"""Shared fixtures: tiny models and the digits dataset."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressor.data import Dataset, load_dataset


class TinyNet(nn.Module):
    """A small conv net with a stem conv, BatchNorm, two more convs and a classifier."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.hidden = nn.Linear(64, 32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.conv1(x)))))
        x = nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        return self.fc(torch.relu(self.hidden(x)))


@pytest.fixture
def tiny_net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")
