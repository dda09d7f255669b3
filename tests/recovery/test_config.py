"""RecoveryConfig: one recovery configuration for the CLI, `run --config FILE` and the API, validated once and
resolved for each baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from compressor.errors import CompressorError
from compressor.pipeline import RunConfig
from compressor.recovery.config import DEFAULT_FINETUNE_LR, RecoveryConfig, read_recovery_file
from compressor.recovery.recipes import RECOVERY_RECIPES
from compressor.strategies.steps import parse_steps

L1 = parse_steps(["l1"], 0.5, [])
CHANNELS = parse_steps(["channels"], 0.5, [])


def test_resolved_leaves_nothing_undecided_and_keeps_what_was_given() -> None:
    resolved = RecoveryConfig(finetune_epochs=1).resolved(L1)
    assert None not in (resolved.finetune_lr, resolved.bn_recalibrate, resolved.distill, resolved.distill_alpha,
                        resolved.freeze_batchnorm, resolved.refit_head, resolved.precision)
    assert (resolved.recovery_recipe, resolved.finetune_lr, resolved.precision) == ("standard", DEFAULT_FINETUNE_LR,
                                                                                    "auto")
    assert resolved.distill_alpha == RECOVERY_RECIPES["standard"].distill_alpha
    mine = RecoveryConfig(finetune_epochs=1, finetune_lr=0.3, bn_recalibrate=False, distill=True, precision="fp32")
    assert mine.resolved(CHANNELS, baseline_lr=0.02) == RecoveryConfig(
        finetune_epochs=1, finetune_lr=0.3, bn_recalibrate=False, distill=True, precision="fp32",
        distill_alpha=RECOVERY_RECIPES["standard"].distill_alpha, freeze_batchnorm=False, refit_head=False,
        recovery_recipe="standard")


def test_the_baseline_decides_the_learning_rate_and_its_history_the_recipe() -> None:
    supcon = [{"step": "supcon-linear"}]
    resolved = RecoveryConfig(finetune_epochs=1).resolved(L1, supcon, baseline_lr=0.02)
    assert (resolved.recovery_recipe, resolved.refit_head, resolved.finetune_lr) == ("frozen-encoder", True, 0.02)


def test_batchnorm_recalibration_follows_the_steps_unless_given() -> None:
    assert RecoveryConfig().resolved(CHANNELS).bn_recalibrate is True
    assert RecoveryConfig().resolved(L1).bn_recalibrate is False
    assert RecoveryConfig(bn_recalibrate=False).resolved(CHANNELS).bn_recalibrate is False


@pytest.mark.parametrize("settings, message", [
    ({"finetune_epochs": float("nan")}, "--finetune-epochs must be a finite number ≥ 0; got nan"),
    ({"finetune_lr": 0.0}, "--finetune-lr must be a finite number > 0; got 0.0"),
    ({"prune_steps": True}, "--prune-steps must be an integer of at least 1; got True"),
    ({"precision": "fp16"}, "--precision must be one of fp32, bf16, auto; got 'fp16'"),
    ({"recovery_recipe": "gentle"}, "--recovery-recipe must be one of auto, standard, frozen-encoder; got 'gentle'"),
])
def test_a_bad_value_is_one_line_naming_the_option(settings: dict, message: str) -> None:
    with pytest.raises(CompressorError) as caught:
        RecoveryConfig(**settings)
    assert str(caught.value) == message


def test_a_config_file_reads_the_recovery_table(tmp_path: Path) -> None:
    path = tmp_path / "recovery.toml"
    path.write_text("[recovery]\nfinetune_epochs = 0.5\ndistill = true\n")
    assert RecoveryConfig.from_mapping(read_recovery_file(path)) == RecoveryConfig(finetune_epochs=0.5, distill=True)
    assert read_recovery_file(None) == {}
    for text, message in (("finetune_epochs = 1\n", "needs a \\[recovery\\] table"),
                          ("[recovery\n", "is not valid TOML"),
                          ("[recovery]\nepochs = 1\n", "unknown setting\\(s\\) epochs; accepted: finetune_epochs")):
        path.write_text(text)
        with pytest.raises(CompressorError, match=message):
            RecoveryConfig.from_mapping(read_recovery_file(path), str(path))
    with pytest.raises(CompressorError, match="--config file .*missing.toml does not exist"):
        read_recovery_file(tmp_path / "missing.toml")


def test_run_builds_one_config_from_the_file_and_the_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             invoke) -> None:
    """`run --config FILE`: the file's [recovery] table, with the options given on the command line winning."""
    import compressor.pipeline

    seen: list[RunConfig] = []

    def stop(config: RunConfig):  # noqa: ANN202 - records the config instead of planning the run
        seen.append(config)
        raise CompressorError("stopped")

    monkeypatch.setattr(compressor.pipeline, "plan_run", stop)
    path = tmp_path / "recovery.toml"
    path.write_text("[recovery]\nfinetune_epochs = 2\nlabel_smoothing = 0.1\nprune_steps = 2\n")
    code, _, err = invoke("compressor", ["run", "-s", "l1", "--dry-run", "--config", str(path),
                                         "--finetune-epochs", "1", "--distill"])
    assert code == 2 and "stopped" in err
    assert seen[0].recovery == RecoveryConfig(finetune_epochs=1, label_smoothing=0.1, prune_steps=2, distill=True)
    code, _, err = invoke("compressor", ["run", "-s", "l1", "--dry-run", "--config", str(tmp_path / "none.toml")])
    assert code == 2 and "does not exist" in err
