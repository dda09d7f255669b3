"""Pre-training: schedule, exact resume after a crash, refusal to resume other settings, unreadable checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import supcon.pretrain as pretrain_module
from compressor.data import Dataset
from compressor.errors import CompressorError
from supcon.pretrain import PretrainConfig, learning_rate, load_pretrain_checkpoint, pretrain


@pytest.fixture(scope="module")
def small(digits: Dataset) -> Dataset:
    keep = np.arange(64)
    return Dataset(digits.info, digits.train.subset(keep), digits.calib.subset(keep[:16]),
                   digits.test.subset(keep[:16]))


def test_learning_rate_warms_up_then_decays_to_zero():
    rates = [learning_rate(step, 100, 10, 0.5) for step in range(100)]
    assert rates[0] == pytest.approx(0.05) and rates[9] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[10] == pytest.approx(0.5) and learning_rate(100, 100, 10, 0.5) == pytest.approx(0.0, abs=1e-12)
    assert learning_rate(0, 10, 0, 0.1) == pytest.approx(0.1)


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(small, tmp_path, monkeypatch):
    config = PretrainConfig(arch="resnet18", epochs=2, batch_size=32, lr=0.05)
    straight = tmp_path / "straight.pt"
    pretrain(small, config, straight, show_progress=False)

    real_step, calls = pretrain_module._step, []

    def crash_in_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # the first step of epoch 2 (two steps per epoch)
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    resumed = tmp_path / "resumed.pt"
    monkeypatch.setattr(pretrain_module, "_step", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        pretrain(small, config, resumed, show_progress=False)
    assert load_pretrain_checkpoint(resumed)["epoch"] == 1
    monkeypatch.setattr(pretrain_module, "_step", real_step)
    pretrain(small, config, resumed, show_progress=False)

    a, b = load_pretrain_checkpoint(straight), load_pretrain_checkpoint(resumed)
    assert b["epoch"] == 2 and [r["loss"] for r in a["history"]] == [r["loss"] for r in b["history"]]
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name


def test_resume_refuses_other_settings_and_datasets(small, tmp_path):
    path = tmp_path / "p.pt"
    pretrain(small, PretrainConfig(arch="resnet18", epochs=1, batch_size=32), path, show_progress=False)
    with pytest.raises(CompressorError, match="only --epochs may change"):
        pretrain(small, PretrainConfig(arch="resnet18", epochs=2, batch_size=32, lr=0.2), path,
                 show_progress=False)
    other = Dataset(small.info.__class__(**{**small.info.__dict__, "name": "other"}), small.train, small.calib,
                    small.test)
    with pytest.raises(CompressorError, match="pre-trained on digits"):
        pretrain(other, PretrainConfig(arch="resnet18", epochs=2, batch_size=32), path, show_progress=False)


def test_bad_settings_and_files_fail_with_one_clear_message(small, tmp_path):
    with pytest.raises(CompressorError, match="unknown optimizer 'lamb'"):
        PretrainConfig(optimizer="lamb")
    with pytest.raises(CompressorError, match="temperature must be positive"):
        PretrainConfig(temperature=0)
    with pytest.raises(CompressorError, match="fewer than one batch"):
        pretrain(small, PretrainConfig(arch="resnet18", batch_size=128), tmp_path / "x.pt", show_progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CompressorError, match="cannot read"):
        load_pretrain_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CompressorError, match="not a SupCon pre-training checkpoint"):
        load_pretrain_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CompressorError, match="does not exist"):
        load_pretrain_checkpoint(tmp_path / "missing.pt")


def test_config_round_trips_through_plain_data():
    config = PretrainConfig(arch="resnet50", epochs=3, optimizer="adamw", supervised=False)
    restored = PretrainConfig.from_dict(config.to_dict())
    assert restored == config and isinstance(restored.views.crop_scale, tuple)


def test_divergence_names_the_step_and_keeps_the_last_good_checkpoint(small, tmp_path, monkeypatch):
    module = pretrain_module
    calls = {"n": 0}
    real = module.distributed_supcon_loss
    per_epoch = len(small.train) // 32

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == per_epoch + 2 else loss

    monkeypatch.setattr(module, "distributed_supcon_loss", poisoned)
    path = tmp_path / "pre.pt"
    config = PretrainConfig(arch="resnet18", epochs=2, batch_size=32, lr=0.05)
    with pytest.raises(CompressorError, match=rf"diverged at epoch 2, step 2/{per_epoch} \(loss nan\); "
                                              rf".*pre.pt still holds epoch 1"):
        pretrain(small, config, path, show_progress=False)
    state = load_pretrain_checkpoint(path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    calls["n"] = per_epoch + 2 - 1  # the next call is poisoned again: the first step after resuming
    with pytest.raises(CompressorError, match="diverged at epoch 2, step 1/"):
        pretrain(small, config, path, show_progress=False)
    assert load_pretrain_checkpoint(path)["epoch"] == 1
