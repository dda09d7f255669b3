"""obd, woodfisher, fishleg: exact global sparsity, pruned weights at zero, N:M groups, predicted vs measured loss."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.strategies.registry import StrategyContext, build_strategy, get_strategy
from compressor.strategies.selection import prunable_layers

FAST = {"obd": {}, "woodfisher": {"block_size": "8", "chunk": "4"},
        "fishleg": {"aux_steps": "30", "refine_steps": "5", "block": "16", "probe_bank": "4", "heldout_probes": "4"}}
COMMON = {"gradients": "8", "grad_batch": "16", "calib_samples": "100", "recomputations": "2"}


@pytest.fixture(scope="module")
def trained(digits: Dataset) -> nn.Module:
    from conftest import TinyNet

    torch.manual_seed(0)
    model = TinyNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for epoch in range(6):
        model.train()
        for x, y in digits.train.batches(8, 64, shuffle=True, seed=epoch):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


def _apply(name: str, model: nn.Module, digits: Dataset, **params: str) -> dict:
    strategy = build_strategy(name, {**COMMON, **FAST[name], **params})
    return strategy.apply(model, StrategyContext.for_dataset(digits, input_size=8)).record


@pytest.mark.parametrize("name", ["obd", "woodfisher", "fishleg"])
def test_global_sparsity_is_exact_and_pruned_weights_are_zero(name: str, trained: nn.Module, digits: Dataset) -> None:
    model = copy.deepcopy(trained)
    stem, bn_weight = model.stem.weight.detach().clone(), model.bn.weight.detach().clone()
    record = _apply(name, model, digits, amount="0.6", include_classifier="true")
    layers = prunable_layers(model, include_classifier=True)
    zeros = sum(int((layer.weight == 0).sum()) for layer in layers.values())
    total = sum(layer.weight.numel() for layer in layers.values())
    assert zeros == round(0.6 * total) == record["zeroed"]
    assert torch.equal(model.stem.weight, stem), "the first conv is skipped by default"
    assert torch.equal(model.bn.weight, bn_weight), "BatchNorm parameters are never pruned or updated"
    assert [s["sparsity"] for s in record["steps"]][-1] == pytest.approx(0.6, abs=1e-3)
    assert len(record["steps"]) == 2 and record["steps"][0]["sparsity"] < 0.6
    assert record["predicted_loss_increase"] > 0 and record["measured_loss_increase"] is not None
    assert "bn_images" not in record  # recalibration is the run's recovery, never the strategy's own


@pytest.mark.parametrize("name", ["obd", "woodfisher", "fishleg"])
def test_pattern_2_4_leaves_exactly_two_nonzeros_in_every_group(name: str, trained: nn.Module,
                                                                digits: Dataset) -> None:
    model = copy.deepcopy(trained)
    record = _apply(name, model, digits, pattern="2:4", include_classifier="true")
    for layer_name in ("conv1", "conv2", "hidden", "fc"):
        weight = getattr(model, layer_name).weight.detach()
        moved = weight.movedim(1, -1) if weight.ndim > 2 else weight
        groups = (moved.reshape(-1, 4) != 0).sum(dim=1)
        assert bool((groups == 2).all()), layer_name
    assert record["sparsity"] == pytest.approx(0.5)


def test_second_order_keeps_more_accuracy_than_magnitude_at_high_sparsity(trained: nn.Module,
                                                                           digits: Dataset) -> None:
    def calib_loss(model: nn.Module) -> float:
        x, y = next(digits.calib.batches(8, 1000))
        with torch.no_grad():
            return float(nn.functional.cross_entropy(model(x), y))

    magnitude = copy.deepcopy(trained)
    build_strategy("l1", {"amount": "0.8"}).apply(magnitude, StrategyContext.for_dataset(digits, input_size=8))
    woodfisher = copy.deepcopy(trained)
    _apply("woodfisher", woodfisher, digits, amount="0.8", gradients="32")
    assert calib_loss(woodfisher) < calib_loss(magnitude)


def _masks(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: layer.weight != 0 for name, layer in prunable_layers(model).items()}


SAME_FISHER = {"fisher": "sampled", "relative_damping": "0.1", "recomputations": "1", "amount": "0.7",
               "gradients": "16"}


def test_fishleg_without_a_fit_prunes_exactly_as_obd_on_the_same_fisher(trained: nn.Module, digits: Dataset) -> None:
    obd, fishleg = copy.deepcopy(trained), copy.deepcopy(trained)
    _apply("obd", obd, digits, **SAME_FISHER)
    record = _apply("fishleg", fishleg, digits, **SAME_FISHER, aux_steps="0")
    assert record["fishleg"]["fits"][0]["layers_accepted"] == 0, "an unfitted Q cannot beat its own start"
    assert all(torch.equal(a, b) for a, b in zip(_masks(obd).values(), _masks(fishleg).values()))


def test_fishleg_fit_beats_its_diagonal_start_on_held_out_probes_and_changes_decisions(
        trained: nn.Module, digits: Dataset) -> None:
    obd, fishleg = copy.deepcopy(trained), copy.deepcopy(trained)
    _apply("obd", obd, digits, **SAME_FISHER)
    record = _apply("fishleg", fishleg, digits, **SAME_FISHER, aux_steps="60")
    fit = record["fishleg"]["fits"][0]
    for info in fit["per_layer"].values():
        assert info["accepted"] == (info["heldout_aux_fitted"] < info["heldout_aux_diagonal"])
    assert fit["layers_accepted"] == fit["layers"] == 3
    changed = sum(int((a ^ b).sum()) for a, b in zip(_masks(obd).values(), _masks(fishleg).values()))
    assert changed >= 10, "the learned Q must prune some weights OBD keeps (without a fit: none, test above)"


def test_gradual_rounds_refine_the_factors_learned_on_the_same_model(trained: nn.Module, digits: Dataset) -> None:
    model = copy.deepcopy(trained)
    first = _apply("fishleg", model, digits, **{**SAME_FISHER, "amount": "0.3"}, aux_steps="20")
    second = _apply("fishleg", model, digits, **SAME_FISHER, aux_steps="20", refine_steps="3")
    assert first["fishleg"]["fits"][0]["warm_start"] is False
    assert second["fishleg"]["fits"][0]["warm_start"] is True and second["fishleg"]["fits"][0]["steps"] == 3
    other = copy.deepcopy(trained)
    assert _apply("fishleg", other, digits, **SAME_FISHER, aux_steps="2")["fishleg"]["fits"][0]["warm_start"] is False


@pytest.mark.parametrize("params, fragment", [
    ({"pattern": "4:2"}, "pattern must be N:M with 0 < N < M"),
    ({"damping": "0"}, "damping must be a positive number"),
    ({"gradients": "0"}, "gradients must be an integer of at least 1"),
    ({"amount": "1.0"}, "amount must be a number in [0, 1)"),
    ({"amount": "0.8", "pattern": "2:4"}, "amount 0.8 contradicts pattern 2:4, which prunes 0.5 of every group"),
    ({"fisher": "true"}, "fisher must be one of empirical, sampled; got 'true'"),
    ({"relative_damping": "-1"}, "relative_damping must be ≥ 0"),
])
def test_bad_parameters_are_refused(params: dict[str, str], fragment: str) -> None:
    for name in ("obd", "woodfisher", "fishleg"):
        with pytest.raises(CompressorError, match=fragment.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            build_strategy(name, params)


@pytest.mark.parametrize("name, params, fragment", [
    ("fishleg", {"probe": "uniform"}, "fishleg.probe must be one of gradient, gaussian; got 'uniform'"),
    ("fishleg", {"gradients": "16"}, r"fishleg.gradients \(16\) must be at least probe_bank \+ heldout_probes \(40\)"),
    ("woodfisher", {"relative_damping": "0.1"}, "woodfisher.relative_damping is not supported"),
])
def test_bad_fishleg_and_woodfisher_parameters_are_refused(name: str, params: dict[str, str], fragment: str) -> None:
    with pytest.raises(CompressorError, match=fragment):
        build_strategy(name, params)


def test_all_three_are_registered_with_their_parameters() -> None:
    assert {p.name for p in get_strategy("fishleg").params} >= {"damping", "gradients", "aux_steps", "pattern",
                                                               "recomputations", "block"}
    assert "block_size" in {p.name for p in get_strategy("woodfisher").params}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["obd", "woodfisher", "fishleg"])
@pytest.mark.parametrize("pattern", ["", "2:4"])
def test_runs_on_cuda_with_exact_sparsity(name: str, pattern: str, trained: nn.Module, digits: Dataset) -> None:
    device = torch.device("cuda")
    model = copy.deepcopy(trained).to(device)
    params = {"amount": "0.6"} if not pattern else {"pattern": pattern}
    strategy = build_strategy(name, {**COMMON, **FAST[name], **params, "include_classifier": "true"})
    context = StrategyContext.for_dataset(digits, input_size=8, device=device)
    record = strategy.apply(model, context).record
    layers = prunable_layers(model, include_classifier=True)
    assert all(layer.weight.device.type == "cuda" for layer in layers.values())
    zeros = sum(int((layer.weight == 0).sum()) for layer in layers.values())
    total = sum(layer.weight.numel() for layer in layers.values())
    expected = round(0.6 * total) if not pattern else total // 2
    assert zeros == expected == record["zeroed"]
    assert record["predicted_loss_increase"] > 0 and record["measured_loss_increase"] is not None
