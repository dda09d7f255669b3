"""Recovery recipes: chosen from the baseline's history, filling only the options left unset; frozen BatchNorm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import compressor
from compressor import CompressorError
from compressor.models.training import TrainConfig, batchnorms, train
from compressor.pipeline import RunConfig
from compressor.recovery.config import RecoveryConfig
from compressor.recovery.recipes import RECOVERY_RECIPES, get_recovery_recipe, recovery_recipe_for
from compressor.strategies.steps import Step


def test_a_linear_evaluation_in_the_history_picks_the_frozen_encoder_recipe() -> None:
    assert recovery_recipe_for([{"step": "supcon-linear"}]) == "frozen-encoder"
    assert recovery_recipe_for([{"step": "train"}, {"step": "finetune"}]) == "standard"
    assert recovery_recipe_for([]) == "standard"
    assert get_recovery_recipe("auto", [{"step": "supcon-linear"}])[0] == "frozen-encoder"
    assert get_recovery_recipe("standard", [{"step": "supcon-linear"}])[0] == "standard", "an explicit name wins"
    with pytest.raises(CompressorError, match="unknown recovery recipe 'bogus'; choose one of auto, standard, "):
        get_recovery_recipe("bogus")


def test_the_recipe_fills_only_what_the_user_left_unset() -> None:
    history = [{"step": "supcon-linear"}]
    frozen = RECOVERY_RECIPES["frozen-encoder"]
    base = RunConfig(steps=[Step("l1", {"amount": 0.5})], recovery=RecoveryConfig(finetune_epochs=1))
    chosen = base.resolved_recovery(history, None)
    assert (chosen.recovery_recipe, chosen.distill, chosen.distill_alpha, chosen.freeze_batchnorm) == \
        ("frozen-encoder", frozen.distill, frozen.distill_alpha, frozen.freeze_batchnorm)
    assert chosen.refit_head is frozen.refit_head is True
    mine = RunConfig(steps=base.steps, recovery=RecoveryConfig(finetune_epochs=1, distill=False, distill_alpha=0.3,
                                                               freeze_batchnorm=False)).resolved_recovery(history, None)
    assert (mine.distill, mine.distill_alpha, mine.freeze_batchnorm) == (False, 0.3, False)
    one_shot = RunConfig(steps=base.steps).resolved_recovery(history, None)
    assert one_shot.distill is False, "without fine-tuning there is nothing to distil"
    plain = base.resolved_recovery([{"step": "train", "lr": 0.05}], 0.01)
    assert (plain.recovery_recipe, plain.distill, plain.freeze_batchnorm, plain.finetune_lr) == \
        ("standard", False, False, 0.01)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture
def loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = 3 + 2 * torch.randn(64, 3, 8, 8, generator=generator)  # far from the fresh statistics (0, 1)
    return DataLoader(TensorDataset(x, torch.randint(0, 3, (64,), generator=generator)), batch_size=16)


def test_frozen_batchnorm_keeps_running_statistics_while_the_weights_train(loader: DataLoader) -> None:
    from compressor.data.loaders import LoaderSplit

    split = LoaderSplit(loader, "train")
    for freeze in (False, True):
        torch.manual_seed(0)
        net = Net()
        before = [t.clone() for norm in batchnorms(net) for t in (norm.running_mean, norm.running_var)]
        weight = net.body[0].weight.detach().clone()
        record = train(net, split, 8, TrainConfig(epochs=1, lr=0.05, freeze_batchnorm=freeze), show_progress=False)
        after = [t for norm in batchnorms(net) for t in (norm.running_mean, norm.running_var)]
        unchanged = all(torch.equal(a, b) for a, b in zip(before, after))
        assert unchanged is freeze and record["freeze_batchnorm"] is freeze
        assert not torch.equal(net.body[0].weight, weight), "the weights train either way"
        assert not net.training


def test_compress_with_the_frozen_encoder_recipe_refits_the_head_and_records_it(loader: DataLoader) -> None:
    out = compressor.compress(Net(), "l1", amount=0.5, train=loader, finetune_epochs=1,
                              recovery_recipe="frozen-encoder")
    recovery = out.record["recovery"]
    frozen = RECOVERY_RECIPES["frozen-encoder"]
    assert recovery["recipe"] == "frozen-encoder" and recovery["distill"] is frozen.distill
    assert recovery["finetune"]["freeze_batchnorm"] is frozen.freeze_batchnorm
    assert ("refit_head" in recovery) is frozen.refit_head and recovery["refit_head"]["images"] == 64
    plain = compressor.compress(Net(), "l1", amount=0.5, train=loader, finetune_epochs=1)
    assert plain.record["recovery"]["recipe"] == "standard" and "refit_head" not in plain.record["recovery"]
    mine = compressor.compress(Net(), "l1", amount=0.5, train=loader, finetune_epochs=1,
                               recovery_recipe="frozen-encoder", refit_head=False, distill=True, distill_alpha=0.8)
    assert "refit_head" not in mine.record["recovery"], "an explicit option beats the recipe"
    assert mine.record["recovery"]["finetune"]["distill_alpha"] == 0.8
    with pytest.raises(CompressorError, match="--recovery-recipe must be one of auto, standard, frozen-encoder; "
                                              "got 'nope'"):
        compressor.compress(Net(), "l1", amount=0.5, train=loader, finetune_epochs=1, recovery_recipe="nope")
    with pytest.raises(CompressorError, match="refit_head fits the final layer on training features"):
        compressor.compress(Net(), "l1", amount=0.5, refit_head=True, example_input=torch.randn(1, 3, 8, 8))


def test_a_bad_recovery_recipe_is_a_one_line_usage_error(invoke, tmp_path: Path) -> None:
    code, _, stderr = invoke("compressor", ["run", "-s", "l1", "--amount", "0.5", "--recovery-recipe", "bogus",
                                            "--dry-run", "--output", str(tmp_path / "r.json")])
    assert code == 2
    assert stderr.strip().splitlines()[-1].endswith(
        "--recovery-recipe must be one of auto, standard, frozen-encoder; got 'bogus'")
    assert json.dumps(stderr).count("Traceback") == 0
