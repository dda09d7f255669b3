"""l1: global scope zeroes exactly what torch.nn.utils.prune.global_unstructured zeroes; pruning is permanent."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from compressor.errors import CompressorError
from compressor.strategies.registry import build_strategy
from compressor.strategies.selection import prunable_layers


def _prune(model: nn.Module, context=None, **params) -> dict:
    return build_strategy("l1", params).apply(model, context).record


@pytest.mark.parametrize("amount", [0.0, 0.1, 0.5, 0.77, 0.95])
def test_global_l1_matches_torch_global_unstructured(tiny_net: nn.Module, amount: float) -> None:
    reference = copy.deepcopy(tiny_net)
    names = ["conv1", "conv2", "hidden"]
    prune.global_unstructured([(reference.get_submodule(n), "weight") for n in names],
                              pruning_method=prune.L1Unstructured, amount=amount)
    _prune(tiny_net, amount=amount, scope="global")
    for name in names:
        ours = tiny_net.get_submodule(name).weight != 0
        theirs = reference.get_submodule(name).weight_mask.bool()
        assert torch.equal(ours, theirs), name


@pytest.mark.parametrize("amount", [0.3, 0.5, 0.9])
def test_layer_scope_matches_torch_l1_unstructured_per_layer(tiny_net: nn.Module, amount: float) -> None:
    reference = copy.deepcopy(tiny_net)
    for name in ("conv1", "conv2", "hidden"):
        prune.l1_unstructured(reference.get_submodule(name), "weight", amount=amount)
    _prune(tiny_net, amount=amount, scope="layer")
    for name in ("conv1", "conv2", "hidden"):
        assert torch.equal(tiny_net.get_submodule(name).weight != 0,
                           reference.get_submodule(name).weight_mask.bool()), name


def test_first_conv_and_classifier_are_excluded_by_default_and_switchable(tiny_net: nn.Module) -> None:
    assert set(prunable_layers(tiny_net)) == {"conv1", "conv2", "hidden"}
    stem, fc = tiny_net.stem.weight.clone(), tiny_net.fc.weight.clone()
    _prune(tiny_net, amount=0.5)
    assert torch.equal(tiny_net.stem.weight, stem) and torch.equal(tiny_net.fc.weight, fc)
    _prune(tiny_net, amount=0.5, include_first_conv=True, include_classifier=True)
    assert (tiny_net.stem.weight == 0).any() and (tiny_net.fc.weight == 0).any()


def test_a_model_with_nothing_eligible_is_one_clear_error_not_a_crash() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(CompressorError, match="no conv or linear layer to prune besides its first conv and its "
                                              "classifier; allow those with include_first_conv=true"):
        _prune(model, amount=0.5)
    _prune(model, amount=0.5, include_classifier=True)
    assert int((model[3].weight == 0).sum()) == 4


def test_biases_and_batchnorm_are_never_pruned(tiny_net: nn.Module) -> None:
    before = {k: v.clone() for k, v in tiny_net.state_dict().items() if not k.endswith("weight") or "bn" in k}
    _prune(tiny_net, amount=0.9, include_first_conv=True, include_classifier=True)
    after = tiny_net.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def test_pruning_is_permanent_and_record_reports_exact_sparsity(tiny_net: nn.Module) -> None:
    keys = set(tiny_net.state_dict())
    record = _prune(tiny_net, amount=0.5)
    assert set(tiny_net.state_dict()) == keys
    assert not any(k.endswith(("_orig", "_mask")) for k in tiny_net.state_dict())
    assert not tiny_net.conv1._forward_pre_hooks
    eligible = sum(m.weight.numel() for m in prunable_layers(tiny_net).values())
    assert record["eligible_params"] == eligible
    assert record["zeroed"] == round(0.5 * eligible)


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_amount_outside_unit_interval_is_refused(amount: float) -> None:
    with pytest.raises(CompressorError, match=r"l1.amount must be a number in \[0, 1\)"):
        build_strategy("l1", {"amount": amount})


def test_bad_scope_is_refused() -> None:
    with pytest.raises(CompressorError, match="global, layer"):
        build_strategy("l1", {"scope": "everywhere"})


def test_pruned_weights_are_positive_zero_so_sparse_files_stay_small(tiny_net: nn.Module) -> None:
    _prune(tiny_net, amount=0.8)
    zeros = tiny_net.conv1.weight[tiny_net.conv1.weight == 0]
    assert zeros.numel() > 0 and not torch.signbit(zeros).any()
