"""The Python API: compress() and measure() over a model and loaders of the caller's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader, TensorDataset

import compressor
from compressor import CompressorError
from compressor.data.loaders import LoaderSplit, RepeatChannels, rebatch

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"


def documented_example() -> str:
    """The first python block under the "Python API" heading of docs/python-api.md."""
    text = PAGE.read_text()
    section = text[text.index("# Python API\n"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPRESSOR_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    exec(compile(documented_example(), "docs/python-api.md", "exec"), namespace)
    before, after = namespace["before"], namespace["after"]
    assert after.macs < before.macs / 2
    assert after.deployable_bytes < before.deployable_bytes
    assert before.accuracy > 0.9 and after.accuracy > 0.8
    assert set(after.latency_ms) == {"torch", "onnxruntime"}


class Net(nn.Module):
    """A plain model with no residual stages, defined here as a user would."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.hidden = nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.hidden(self.body(x))))


@pytest.fixture
def loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 3, 12, 12, generator=generator), torch.randint(0, 3, (96,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=20)


def test_l1_through_the_api_matches_torch_global_unstructured_and_leaves_the_callers_model_alone(
        loader: DataLoader) -> None:
    torch.manual_seed(0)
    model = Net()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    out = compressor.compress(model, "l1", amount=0.6, device="cpu")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in original.items())

    reference = Net()
    reference.load_state_dict(original)
    eligible = [(reference.body[3], "weight"), (reference.hidden, "weight")]  # stem conv and classifier stay dense
    prune.global_unstructured(eligible, prune.L1Unstructured, amount=0.6)
    for module, _ in eligible:
        prune.remove(module, "weight")
    assert torch.equal(out.model.body[3].weight, reference.body[3].weight)
    assert torch.equal(out.model.hidden.weight, reference.hidden.weight)
    assert out.record["steps"][0]["strategy"] == "l1"


def test_a_strategy_that_does_not_fit_says_so_in_one_line(loader: DataLoader) -> None:
    with pytest.raises(CompressorError, match="blocks") as info:
        compressor.compress(Net(), "blocks", amount=0.5, train=loader, example_input=torch.randn(1, 3, 12, 12))
    assert "\n" not in str(info.value)


def test_a_strategy_that_needs_data_names_the_missing_loader() -> None:
    with pytest.raises(CompressorError, match="calib=") as info:
        compressor.compress(Net(), "layer-sensitive", amount=0.5, example_input=torch.randn(1, 3, 12, 12))
    assert "\n" not in str(info.value)


def test_the_input_shape_comes_from_example_input_or_the_loader(loader: DataLoader) -> None:
    with pytest.raises(CompressorError, match="example_input"):
        compressor.compress(Net(), "channels", amount=0.5)
    out = compressor.compress(Net(), "channels", amount=0.5, calib=loader, params={"importance": "l1"})
    assert out.record["input_size"] == 12
    assert out.model.body[3].out_channels < 16


def test_params_reach_the_named_step(loader: DataLoader) -> None:
    out = compressor.compress(Net(), "l1+int8", amount=0.5, params={"l1.scope": "layer", "calib_samples": 8},
                              calib=loader)
    assert out.record["steps"][0]["params"]["scope"] == "layer"
    assert out.record["steps"][1]["params"]["calib_samples"] == 8
    assert out.int8 is not None


@pytest.mark.usefixtures("quick_timing")  # what is timed matters here, not how fast
def test_measure_of_an_int8_result_measures_the_quantized_model(loader: DataLoader) -> None:
    out = compressor.compress(Net(), "int8", calib=loader, params={"calib_samples": 8})
    m = compressor.measure(out, loader, backends=("onnxruntime",), compressions=())
    assert "onnxruntime-int8" in m.latency_ms
    assert m.details["metrics_from"].startswith("int8")
    assert m.deployable_bytes < m.size_bytes
    assert 0 <= m.accuracy <= 1 and m.macs > 0


@pytest.mark.usefixtures("quick_timing")  # what is timed matters here, not how fast
def test_measure_at_a_deployment_size_times_both_sizes_and_keeps_accuracy_at_the_loaders(loader: DataLoader) -> None:
    out = compressor.compress(Net(), "int8", calib=loader, params={"calib_samples": 8})
    assert out.record["int8_calibration"]["chosen"] in ("minmax", "entropy", "percentile")
    m = compressor.measure(out, loader, backends=("onnxruntime",), compressions=(), deploy_size=24,
                           batch_sizes=(1, 2), thread_counts=(1,))
    grid = m.details["latency_grid"]
    assert {(r["input_size"], r["batch_size"], r["backend"]) for r in grid["rows"]} == {
        (s, b, k) for s in (12, 24) for b in (1, 2) for k in ("onnxruntime", "onnxruntime-int8")}
    assert grid["macs"]["24"] > grid["macs"]["12"] and grid["int8_kernels"]["24"]["runs_int8"]
    assert m.details["input_size"] == 12  # accuracy and headline latency at the loader's size


def test_fine_tuning_on_a_loader_keeps_pruned_weights_at_zero(loader: DataLoader) -> None:
    torch.manual_seed(0)
    model = Net()
    pruned = compressor.compress(model, "l1", amount=0.5).model
    tuned = compressor.compress(model, "l1", amount=0.5, train=loader, finetune_epochs=2, bn_recalibrate=True,
                                example_input=torch.randn(1, 3, 12, 12))
    assert tuned.record["recovery"]["finetune"]["steps"] == 10  # the loader's batches of 20, twice over 96 images
    for name in ("body.3.weight", "hidden.weight"):
        before, after = pruned.state_dict()[name], tuned.model.state_dict()[name]
        assert torch.all(after[before == 0] == 0)
        assert not torch.equal(before, after)


def test_loader_split_regroups_and_resizes_without_losing_samples(loader: DataLoader) -> None:
    split = LoaderSplit(loader)
    batches = list(split.batches(16, 32))
    assert [len(y) for _, y in batches] == [32, 32, 32]
    assert batches[0][0].shape[-2:] == (16, 16)
    assert len(split) == 96
    labels = torch.cat([y for _, y in loader])
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
    assert [len(y) for _, y in rebatch([(torch.zeros(5, 1, 2, 2), torch.zeros(5))], 2)] == [2, 2, 1]


def test_a_loader_of_the_wrong_shape_is_one_line() -> None:
    with pytest.raises(CompressorError, match="loader batch 0 must be"):
        list(LoaderSplit([torch.zeros(2, 3)]).batches(8, 2))


def test_repeat_channels_gives_identical_rgb_planes(digits) -> None:
    x, _ = next(RepeatChannels(digits.test).batches(8, 4))
    assert x.shape == (4, 3, 8, 8)
    assert torch.equal(x[:, 0], x[:, 2])


def test_unavailable_devices_are_usage_errors() -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present here")
    with pytest.raises(CompressorError, match="'cuda:0' is not available"):
        compressor.compress(Net(), "l1", amount=0.5, device="cuda:0")
    with pytest.raises(CompressorError, match="unknown device 'gpu'"):
        compressor.compress(Net(), "l1", amount=0.5, device="gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compress_on_cuda_runs_strategies_and_fine_tuning_there(loader: DataLoader) -> None:
    out = compressor.compress(Net(), "layer-sensitive", amount=0.5, train=loader, finetune_epochs=1,
                              device="cuda", example_input=torch.randn(1, 3, 12, 12))
    assert next(out.model.parameters()).device.type == "cuda"
    m = compressor.measure(out, loader)
    assert m.accuracy is not None


def test_distilled_recovery_is_recorded_and_bad_settings_are_one_line(loader: DataLoader) -> None:
    out = compressor.compress(Net(), "l1", amount=0.5, train=loader, finetune_epochs=1, distill=True,
                              distill_alpha=0.7, distill_temperature=2.0, label_smoothing=0.1,
                              example_input=torch.randn(1, 3, 12, 12))
    finetune = out.record["recovery"]["finetune"]
    assert finetune["label_smoothing"] == 0.1
    assert out.record["recovery"]["distill"] is True
    assert (finetune["distill_alpha"], finetune["distill_temperature"]) == (0.7, 2.0)
    # the same RecoveryConfig validates the API's keywords and the CLI's options: one message for both
    for settings, message in (({"distill_alpha": 1.5}, "--distill-alpha must be a number in \\[0, 1\\]"),
                              ({"distill_temperature": 0.0}, "--distill-temperature must be a number > 0"),
                              ({"finetune_epochs": 0}, "--distill distils during fine-tuning"),
                              ({"label_smoothing": -0.1}, "--label-smoothing must be a number in \\[0, 1\\)"),
                              ({"distil": True}, "compress\\(\\): unknown setting\\(s\\) distil; accepted: ")):
        with pytest.raises(CompressorError, match=message):
            compressor.compress(Net(), "l1", amount=0.5, train=loader, **{"finetune_epochs": 1, "distill": True,
                                                                          **settings})


@pytest.mark.parametrize("args, message", [
    (["--distill"], "--distill distils during fine-tuning: give --finetune-epochs > 0"),
    (["--distill", "--finetune-epochs", "1", "--distill-alpha", "2"], "--distill-alpha must be a number in [0, 1]"),
    (["--distill", "--finetune-epochs", "1", "--distill-temperature", "-1"],
     "--distill-temperature must be a number > 0"),
    (["--finetune-epochs", "1", "--label-smoothing", "1"], "--label-smoothing must be a number in [0, 1)"),
    (["--prune-steps", "0"], "--prune-steps must be an integer of at least 1"),
    (["--prune-steps", "3"], "--prune-steps fine-tunes between its rounds: give --finetune-epochs > 0"),
])
def test_bad_distillation_options_are_usage_errors(invoke, args: list[str], message: str) -> None:
    code, _, err = invoke("compressor", ["run", "-s", "l1", "--dry-run", *args])
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cache_keys_tell_different_data_of_the_same_size_apart(digits, loader: DataLoader) -> None:
    import numpy as np

    from compressor.data.loaders import split_key

    first, second = digits.train.subset(np.arange(100)), digits.train.subset(np.arange(100, 200))
    assert split_key(first, "calib") != split_key(second, "calib")
    assert split_key(first, "calib") == split_key(digits.train.subset(np.arange(100)), "calib")
    assert split_key(LoaderSplit(loader), "calib").startswith("calib:96:")


def test_gradual_l1_follows_the_cubic_schedule_and_keeps_earlier_zeros(loader: DataLoader,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import compressor.recovery.gradual as gradual

    zeros_after_each_round = []
    real_recover = gradual.recover

    def spy(model, *args, **kwargs):  # noqa: ANN001, ANN202 - records the zeros before each round's fine-tune
        zeros_after_each_round.append({k: v.clone() for k, v in gradual.zero_masks(model).items()})
        return real_recover(model, *args, **kwargs)

    monkeypatch.setattr(gradual, "recover", spy)
    torch.manual_seed(0)
    out = compressor.compress(Net(), "l1", amount=0.6, train=loader, finetune_epochs=3, prune_steps=3,
                              example_input=torch.randn(1, 3, 12, 12))
    amounts = [step["params"]["amount"] for step in out.record["steps"]]
    assert amounts == pytest.approx([0.6 * (1 - (2 / 3) ** 3), 0.6 * (1 - (1 / 3) ** 3), 0.6])
    assert [r["round"] for r in out.record["recovery"]["rounds"]] == [1, 2, 3]
    assert all(r["finetune"]["epochs"] == 1 for r in out.record["recovery"]["rounds"])
    for earlier, later in zip(zeros_after_each_round, zeros_after_each_round[1:]):
        for name, keep in earlier.items():
            assert not torch.any(later[name][~keep]), f"{name}: a pruned weight came back"
    eligible = torch.cat([out.model.body[3].weight.flatten(), out.model.hidden.weight.flatten()])
    assert (eligible == 0).float().mean().item() == pytest.approx(0.6, abs=1e-3)


def test_gradual_channels_reach_the_overall_ratio(loader: DataLoader) -> None:
    out = compressor.compress(Net(), "channels", amount=0.5, calib=loader, train=loader, finetune_epochs=1,
                              prune_steps=3, params={"importance": "l1"})
    amounts = [step["params"]["amount"] for step in out.record["steps"]]
    kept = 1.0
    for amount in amounts:
        kept *= 1 - amount
    assert kept == pytest.approx(0.5)
    assert 7 <= out.model.body[3].out_channels <= 9  # half of 16, up to each round's rounding of channel counts


def test_bad_gradual_settings_are_one_line(loader: DataLoader) -> None:
    with pytest.raises(CompressorError, match="--prune-steps must be an integer of at least 1"):
        compressor.compress(Net(), "l1", amount=0.5, prune_steps=0)
    with pytest.raises(CompressorError, match="--prune-steps fine-tunes between its rounds"):
        compressor.compress(Net(), "l1", amount=0.5, prune_steps=3)


def test_automatic_bn_recalibration_uses_calibration_data_when_there_is_no_train_loader(loader: DataLoader) -> None:
    out = compressor.compress(Net(), "channels", amount=0.5, calib=loader, params={"importance": "l1"})
    assert out.record["recovery"]["bn_recalibrate"] is True and out.record["recovery"]["bn_images"] > 0
    bare = compressor.compress(Net(), "channels", amount=0.5, example_input=torch.randn(1, 1, 12, 12),
                               params={"importance": "l1"})
    assert bare.record["recovery"]["bn_recalibrate"] is False
    kept = compressor.compress(Net(), "channels", amount=0.5, calib=loader, bn_recalibrate=False)
    assert kept.record["recovery"]["bn_recalibrate"] is False
