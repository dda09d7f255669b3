"""layer-sensitive: hits the requested sparsity, spares the layers whose pruning hurts, and keeps the allocation
(global magnitude, LAMP, scan or blend) with the lowest calibration loss after BatchNorm recalibration."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TinyNet
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.recovery.batchnorm import recalibrate_batchnorm
from compressor.strategies.registry import StrategyContext, build_strategy, recommends_bn_recalibration
from compressor.strategies.selection import lamp_scores, prunable_layers
from compressor.strategies.sensitivity import LayerSensitive, allocate, calib_batches, calib_scores


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


def _fit(model: nn.Module, digits: Dataset, epochs: int) -> nn.Module:
    """`model` trained with Adam on the digits at 8 px for `epochs` epochs, in eval mode."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(epochs):
        for x, y in digits.train.batches(8, 64, shuffle=True, seed=epoch):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def two_paths(digits: Dataset) -> TwoPaths:
    torch.manual_seed(0)
    return _fit(TwoPaths(), digits, 15)


def _context(digits: Dataset, cache: Path | None = None) -> StrategyContext:
    return StrategyContext.for_dataset(digits, input_size=8, cache_dir=cache)


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.8])
def test_sensitive_layer_gets_a_lower_ratio_and_global_sparsity_is_on_target(
        two_paths: TwoPaths, digits: Dataset, amount: float) -> None:
    model = TwoPaths()
    model.load_state_dict(two_paths.state_dict())
    strategy = build_strategy("layer-sensitive", {"amount": amount, "allocation": "scan"})
    record = strategy.apply(model, _context(digits)).record
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


def test_allocation_reaches_the_largest_scanned_ratio() -> None:
    costs = {"a": [0.1, 0.2], "b": [0.1, 0.3]}
    ratios = allocate(costs, [0.5, 0.99], {"a": 1000, "b": 3000}, amount=0.98)
    assert 1000 * ratios["a"] + 3000 * ratios["b"] == pytest.approx(0.98 * 4000)
    assert max(ratios.values()) == pytest.approx(0.99)


@pytest.mark.parametrize("allocation", ["scan", "blend"])
def test_ratios_must_reach_the_amount_when_the_scan_decides(allocation: str) -> None:
    with pytest.raises(CompressorError, match="ratios must reach at least the amount 0.8"):
        build_strategy("layer-sensitive", {"amount": 0.8, "ratios": "0.3,0.5", "allocation": allocation})


def test_auto_skips_a_scan_that_does_not_reach_the_amount(tiny_net: TinyNet, digits: Dataset) -> None:
    strategy = build_strategy("layer-sensitive", {"amount": 0.8, "ratios": "0.3,0.5"})
    record = strategy.apply(tiny_net, _context(digits)).record
    assert "sensitivity" not in record
    assert set(record["allocation"]["candidates"]) == {"global", "lamp"}
    assert "below the amount 0.8" in record["allocation"]["skipped"]["scan"]


def test_lamp_scores_by_hand() -> None:
    # squares 1, 4, 9, 4, 0: 1 / (1+4+4+9), 4 / (4+4+9) for both tied 2s, 9 / 9, 0
    scores = lamp_scores(torch.tensor([1.0, -2.0, 3.0, 2.0, 0.0]))
    assert scores.tolist() == pytest.approx([1 / 18, 4 / 17, 1.0, 4 / 17, 0.0])


def test_lamp_scores_top_weight_scores_one_and_order_follows_magnitude() -> None:
    torch.manual_seed(0)
    weight = torch.randn(8, 4, 3, 3)
    scores = lamp_scores(weight)
    assert scores.shape == weight.shape
    assert scores.flatten()[weight.abs().argmax()] == 1.0 and scores.max() == 1.0
    by_magnitude = scores.flatten()[weight.abs().flatten().argsort()]
    assert torch.all(by_magnitude[1:] > by_magnitude[:-1])


def _naive_lamp(weight: torch.Tensor) -> torch.Tensor:
    """LAMP straight from its definition: w² over the sum of v² for every v of the layer with |v| >= |w|."""
    square = weight.detach().flatten().double() ** 2
    return (square / (square[None, :] * (square[None, :] >= square[:, None])).sum(1)).view_as(weight)


def _trained_tiny_net(digits: Dataset) -> TinyNet:
    """A TinyNet after a few quick epochs on digits, so BatchNorm statistics and pruning matter."""
    torch.manual_seed(0)
    return _fit(TinyNet(), digits, 3)


@pytest.fixture(scope="module")
def trained_tiny(digits: Dataset) -> dict[str, torch.Tensor]:
    return _trained_tiny_net(digits).state_dict()


def _tiny(state: dict[str, torch.Tensor]) -> TinyNet:
    model = TinyNet()
    model.load_state_dict(state)
    return model.eval()


def test_auto_keeps_the_candidate_with_the_lowest_calibration_loss(trained_tiny: dict[str, torch.Tensor],
                                                                   digits: Dataset) -> None:
    model = _tiny(trained_tiny)
    record = build_strategy("layer-sensitive", {"amount": 0.7}).apply(model, _context(digits)).record
    allocation = record["allocation"]
    candidates = allocation["candidates"]
    assert set(candidates) == {"global", "lamp", "scan", "blend"} and allocation["requested"] == "auto"
    assert len({judged["calib_loss"] for judged in candidates.values()}) == 4  # a real choice
    assert allocation["chosen"] == min(candidates, key=lambda name: candidates[name]["calib_loss"])
    assert allocation["calib_samples"] == len(digits.calib)
    layers = prunable_layers(model)
    for name, judged in candidates.items():
        assert set(judged["ratios"]) == set(layers) and 0.0 <= judged["calib_accuracy"] <= 1.0
        zeroed = sum(judged["ratios"][layer] * layers[layer].weight.numel() for layer in layers)
        assert zeroed / sum(layer.weight.numel() for layer in layers.values()) == pytest.approx(0.7, abs=0.01), name
    for layer, info in record["layers"].items():
        assert info["chosen_ratio"] == candidates[allocation["chosen"]]["ratios"][layer] == info["sparsity"]
    # recalibrated as the run's recovery does (the same seed), the model is the judged one: same calibration loss
    context = _context(digits)
    recalibrate_batchnorm(model, context.train, context.input_size, seed=context.seed)
    batches = calib_batches(_context(digits), 2000)
    assert calib_scores(model, _context(digits), batches)[1] == pytest.approx(
        candidates[allocation["chosen"]]["calib_loss"], rel=1e-6)


def test_global_allocation_is_exactly_global_l1(trained_tiny: dict[str, torch.Tensor], digits: Dataset,
                                                tmp_path: Path) -> None:
    ours, l1 = _tiny(trained_tiny), _tiny(trained_tiny)
    strategy = build_strategy("layer-sensitive", {"amount": 0.6, "allocation": "global"})
    record = strategy.apply(ours, _context(digits, tmp_path)).record
    build_strategy("l1", {"amount": 0.6, "scope": "global"}).apply(l1, _context(digits))
    for key, tensor in l1.state_dict().items():
        assert torch.equal(ours.state_dict()[key], tensor), key
    assert record["allocation"]["chosen"] == "global" and set(record["allocation"]["candidates"]) == {"global"}
    assert "sensitivity" not in record and not (tmp_path / "sensitivity").exists()  # no scan was run


def test_lamp_allocation_matches_lamp_from_its_definition(trained_tiny: dict[str, torch.Tensor],
                                                          digits: Dataset) -> None:
    model = _tiny(trained_tiny)
    layers = prunable_layers(model)
    scores = torch.cat([_naive_lamp(layer.weight).flatten() for layer in layers.values()])
    k = round(0.75 * scores.numel())
    expected = torch.ones_like(scores, dtype=torch.bool)
    expected[scores.argsort()[:k]] = False
    assert scores.sort().values[k] > scores.sort().values[k - 1]  # no tie at the threshold: one right answer
    record = build_strategy("layer-sensitive", {"amount": 0.75, "allocation": "lamp"}).apply(
        model, _context(digits)).record
    assert record["allocation"]["chosen"] == "lamp"
    kept = torch.cat([(layer.weight != 0).flatten() for layer in layers.values()])
    assert torch.equal(kept, expected)


def test_the_strategy_leaves_batchnorm_to_the_run(trained_tiny: dict[str, torch.Tensor], digits: Dataset) -> None:
    untouched = _tiny(trained_tiny)
    record = build_strategy("layer-sensitive", {"amount": 0.7}).apply(untouched, _context(digits)).record
    for key in ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "bn2.running_mean",
                "bn2.running_var", "bn2.num_batches_tracked"):
        assert torch.equal(untouched.state_dict()[key], trained_tiny[key]), key  # judging restored them too
    assert "bn_images" not in record and recommends_bn_recalibration(build_strategy("layer-sensitive"))


def test_a_bad_allocation_is_one_clear_error() -> None:
    with pytest.raises(CompressorError, match=r"layer-sensitive.allocation must be one of auto, global, lamp, scan, "
                                              r"blend; got 'best'"):
        build_strategy("layer-sensitive", {"allocation": "best"})
    with pytest.raises(CompressorError, match=r"must be one of auto, global, lamp, scan, blend; got 'best'"):
        LayerSensitive(allocation="best")  # type: ignore[arg-type]
