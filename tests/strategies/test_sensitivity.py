"""layer-sensitive: hits the requested sparsity and spares the layers whose pruning hurts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.registry import StrategyContext, build_strategy
from compressor.strategies.sensitivity import allocate


class TwoPaths(nn.Module):
    """A trained path that carries the signal and an equally large path scaled to near irrelevance."""

    def __init__(self) -> None:
        super().__init__()
        self.vital = nn.Linear(64, 64)
        self.idle = nn.Linear(64, 64)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.head(torch.relu(self.vital(x)) + 1e-4 * self.idle(x))


@pytest.fixture(scope="module")
def two_paths(digits: Dataset) -> TwoPaths:
    torch.manual_seed(0)
    model = TwoPaths()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(15):
        for x, y in digits.train.batches(8, 64, shuffle=True, seed=epoch):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


def _context(digits: Dataset, cache: Path | None = None) -> StrategyContext:
    return StrategyContext.for_dataset(digits, input_size=8, cache_dir=cache)


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.8])
def test_sensitive_layer_gets_a_lower_ratio_and_global_sparsity_is_on_target(
        two_paths: TwoPaths, digits: Dataset, amount: float) -> None:
    model = TwoPaths()
    model.load_state_dict(two_paths.state_dict())
    record = build_strategy("layer-sensitive", {"amount": amount}).apply(model, _context(digits)).record
    layers = record["layers"]
    assert set(layers) == {"vital", "idle"}
    assert layers["vital"]["chosen_ratio"] < layers["idle"]["chosen_ratio"]
    zeroed = int((model.vital.weight == 0).sum() + (model.idle.weight == 0).sum())
    assert abs(zeroed / (2 * 64 * 64) - amount) <= 0.01


def test_scan_uses_the_calibration_split_and_is_cached(two_paths: TwoPaths, digits: Dataset, tmp_path: Path) -> None:
    first, second = TwoPaths(), TwoPaths()
    first.load_state_dict(two_paths.state_dict())
    second.load_state_dict(two_paths.state_dict())
    strategy = build_strategy("layer-sensitive", {"amount": 0.5})
    a = strategy.apply(first, _context(digits, tmp_path)).record["sensitivity"]
    b = strategy.apply(second, _context(digits, tmp_path)).record["sensitivity"]
    assert not a["cached"] and b["cached"] and Path(b["cache_file"]).is_file()
    third = TwoPaths()
    third.load_state_dict(two_paths.state_dict())
    fewer = build_strategy("layer-sensitive", {"amount": 0.5, "calib_samples": 256})
    assert not fewer.apply(third, _context(digits, tmp_path)).record["sensitivity"]["cached"]  # another scan
    assert torch.equal(first.vital.weight, second.vital.weight)
    calib_accuracy = (two_paths(next(digits.calib.batches(8, 10_000))[0]).argmax(1)
                      == digits.calib.labels).float().mean().item()
    assert a["baseline_accuracy"] == pytest.approx(calib_accuracy)


def test_allocation_prefers_cheap_layers_and_hits_the_amount() -> None:
    costs = {"cheap": [0.0, 0.0, 0.1], "dear": [0.5, 1.0, 2.0]}
    ratios = allocate(costs, [0.3, 0.6, 0.9], {"cheap": 1000, "dear": 1000}, amount=0.5)
    assert ratios["cheap"] == pytest.approx(0.9) and ratios["dear"] == pytest.approx(0.1)


def test_ratios_must_reach_the_amount() -> None:
    with pytest.raises(CompressorError, match="ratios must reach at least the amount 0.8"):
        build_strategy("layer-sensitive", {"amount": 0.8, "ratios": "0.3,0.5"})
