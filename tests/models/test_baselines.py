"""Baseline recipes, the small-input stem and the training extras they use: random erasing, EMA, bf16."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.models.baselines import (
    MIN_BASELINE_BATCH,
    MIN_BASELINE_STEPS,
    RECIPES,
    BaselineRequest,
    baseline_batch_size,
    baseline_finetune_lr,
    baseline_path,
    get_recipe,
    train_baseline,
    training_config,
)
from compressor.models.checkpoint import Checkpoint, ModelSpec
from compressor.models.training import (
    PROBE_MIN_STEPS,
    TrainConfig,
    ema_update,
    erase_randomly,
    probe_precision,
    steps_per_epoch,
    train,
)
from compressor.models.zoo import build_model, input_size_for
from compressor.recovery.config import RecoveryConfig
from compressor.strategies.steps import parse_steps
from factories import small_cnn
from tests.conftest import within_noise


def test_the_cache_name_changes_with_every_training_setting(digits: Dataset, tmp_path) -> None:
    base = BaselineRequest("resnet18")
    path = baseline_path(base, digits, tmp_path)
    assert path == baseline_path(BaselineRequest("resnet18"), digits, tmp_path)
    others = [BaselineRequest("resnet18", recipe="anchor"), BaselineRequest("resnet18", lr=0.05 + 1e-9),
              BaselineRequest("resnet18", epochs=3), BaselineRequest("resnet18", precision="bf16"),
              BaselineRequest("resnet18", seed=1), BaselineRequest("resnet18-s1")]
    names = {baseline_path(request, digits, tmp_path).name for request in others}
    assert path.name not in names and len(names) == len(others)
    assert "-standard-" in path.name and path.parent == tmp_path / "baselines"


def test_explicit_epochs_and_lr_override_the_recipe(digits: Dataset) -> None:
    anchor = training_config(BaselineRequest("resnet18", recipe="anchor"), "digits")
    assert (anchor.epochs, anchor.lr, anchor.label_smoothing) == (10, 0.1, 0.1)
    assert anchor.ema_decay > 0 and anchor.random_erasing > 0 and anchor.precision == "auto"
    mine = training_config(BaselineRequest("resnet18", recipe="anchor", epochs=2, lr=0.3), "digits")
    assert (mine.epochs, mine.lr, mine.label_smoothing) == (2, 0.3, 0.1)
    assert training_config(BaselineRequest("resnet18"), "fashion-mnist").epochs == 8


@pytest.mark.parametrize("samples", [50, 1293, 5000, 58000])
@pytest.mark.parametrize("epochs", [1, 3, 8, 15])
def test_a_short_baseline_on_a_small_split_halves_its_batch_until_it_has_the_steps(samples: int, epochs: int) -> None:
    batch = baseline_batch_size(epochs, samples)
    steps = epochs * steps_per_epoch(samples, batch)
    assert MIN_BASELINE_BATCH <= batch <= TrainConfig.batch_size and batch & (batch - 1) == 0  # a power of two
    assert steps >= MIN_BASELINE_STEPS or batch == MIN_BASELINE_BATCH  # enough steps, or as small as it goes
    if batch < TrainConfig.batch_size:  # halved only as far as needed
        assert epochs * steps_per_epoch(samples, 2 * batch) < MIN_BASELINE_STEPS


def test_default_baselines_of_the_built_in_datasets_keep_the_batch_of_128(digits: Dataset) -> None:
    assert training_config(BaselineRequest("resnet18"), "digits", len(digits.train)).batch_size == 128  # 15 epochs
    assert training_config(BaselineRequest("resnet18", epochs=3), "digits", len(digits.train)).batch_size == 32
    assert training_config(BaselineRequest("resnet18", epochs=1), "fashion-mnist", 58000).batch_size == 128


@pytest.mark.slow
def test_mobilenet_v3_learns_digits_in_three_epochs(digits: Dataset) -> None:
    # issue 33: with 33 steps of 128 images it stayed at chance (10 %); the smaller batch gives it 123 steps
    from compressor.models.checkpoint import rgb_dataset

    rgb = rgb_dataset(digits)
    checkpoint = train_baseline(BaselineRequest("torchvision:mobilenet_v3_small", epochs=3), rgb, show_progress=False)
    accuracy = evaluate(torch_forward(checkpoint.model), rgb.test, checkpoint.spec.input_size)["accuracy"]
    chance_se = (0.1 * 0.9 / len(rgb.test)) ** 0.5
    assert accuracy > 0.1 + 10 * chance_se, accuracy  # far above chance, not a figure of one machine


def test_an_unknown_recipe_is_one_line_naming_the_recipes() -> None:
    with pytest.raises(CompressorError, match="unknown recipe 'fancy'; choose one of standard, anchor"):
        get_recipe("fancy")
    assert set(RECIPES) == {"standard", "anchor"}


def test_fine_tuning_peaks_at_a_fifth_of_the_baselines_lr() -> None:
    spec = ModelSpec("resnet18", 10, 1, 32, "digits", tuple("0123456789"), (0.5,), (0.25,))
    trained = Checkpoint(spec, nn.Linear(1, 1), [{"step": "train", "lr": 0.1}])
    assert baseline_finetune_lr(trained, 0.01) == pytest.approx(0.02)
    assert baseline_finetune_lr(Checkpoint(spec, nn.Linear(1, 1), [{"step": "import"}]), 0.01) == 0.01


def test_bn_recalibration_defaults_on_when_a_step_recommends_it() -> None:
    def bn(names: str, **kw: object) -> bool | None:
        return RecoveryConfig(**kw).resolved(parse_steps([names], 0.5, [])).bn_recalibrate

    assert bn("channels") is True and bn("blocks") is True and bn("blocks+l1+int8") is True
    assert bn("obd") is True and bn("layer-sensitive") is True and bn("nm+fishleg") is True  # they recommend it
    assert bn("l1") is False
    # the run's setting decides, whatever the strategy recommends
    assert bn("channels", bn_recalibrate=False) is False and bn("obd", bn_recalibrate=False) is False
    assert bn("l1", bn_recalibrate=True) is True


@pytest.mark.parametrize("strategy", ["obd", "woodfisher", "fishleg", "layer-sensitive", "l1"])
def test_recalibration_is_not_a_strategy_parameter(strategy: str) -> None:
    with pytest.raises(CompressorError, match=f"{strategy}.bn_recalibrate: BatchNorm recalibration is a recovery "
                                              "setting.*--no-bn-recalibrate"):
        parse_steps([strategy], 0.5, ["bn_recalibrate=false"])


def test_the_small_input_stem_keeps_4x_the_resolution() -> None:
    plain, small = build_model("resnet18", 10, 1), build_model("resnet18-s1", 10, 1)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1) and small.conv1.in_channels == 1
    features = {}
    for name, model in (("plain", plain), ("small", small)):
        model.layer1.register_forward_hook(lambda _m, _i, out, name=name: features.__setitem__(name, out.shape[-1]))
        model.eval()(torch.zeros(1, 1, 32, 32))
    assert features == {"plain": 8, "small": 16}
    assert input_size_for("resnet18-s1", 28) == 28 and input_size_for("resnet18", 28) == 32


def test_random_erasing_zeroes_one_rectangle_per_picked_image() -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 1, 16, 16)
    assert torch.equal(erase_randomly(x, 0.0), x)
    erased = erase_randomly(x, 1.0)
    assert torch.all(x == 1), "the input batch is not modified in place"
    for image in erased:
        rows, cols = (image[0] == 0).nonzero(as_tuple=True)
        assert len(rows) > 0
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box == len(rows), "the zeros form one rectangle"
        assert 0.02 * 256 * 0.8 <= len(rows) <= 0.33 * 256 * 1.2


def test_ema_update_warms_up_then_holds_the_decay() -> None:
    update = ema_update(0.99)
    averaged, current = torch.zeros(3), torch.ones(3)
    assert torch.allclose(update(averaged, current, 0), torch.full((3,), 0.9))  # weight (1+0)/(10+0) = 0.1
    assert torch.allclose(update(averaged, current, 10_000), torch.full((3,), 0.01))
    counts = torch.tensor(3)
    assert update(counts, torch.tensor(7), 5) == 7  # integer buffers follow the model


def test_an_ema_run_ends_on_the_average_not_the_last_weights(tiny_net: nn.Module, digits: Dataset) -> None:
    runs = {}
    for decay in (0.0, 0.9):
        torch.manual_seed(0)
        model = copy.deepcopy(tiny_net)
        record = train(model, digits.train, 8, TrainConfig(epochs=4, lr=0.2, ema_decay=decay), show_progress=False)
        runs[decay] = (model, record)
    plain, averaged = runs[0.0][0], runs[0.9][0]
    assert runs[0.9][1]["ema_decay"] == 0.9
    assert not torch.equal(plain.stem.weight, averaged.stem.weight)
    assert not torch.equal(plain.bn.running_mean, averaged.bn.running_mean)
    assert evaluate(torch_forward(averaged), digits.test, 8)["accuracy"] > 0.5


def test_bf16_training_matches_fp32_accuracy_on_digits(tiny_net: nn.Module, digits: Dataset) -> None:
    """bf16 autocast + channels_last learns as well as fp32: within 3 combined standard errors on 360 test images."""
    accuracy, records = {}, {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = copy.deepcopy(tiny_net)
        records[precision] = train(model, digits.train, 8, TrainConfig(epochs=8, lr=0.2, precision=precision),
                                   show_progress=False)
        assert model.stem.weight.is_contiguous() and model.stem.weight.dtype == torch.float32
        accuracy[precision] = evaluate(torch_forward(model), digits.test, 8)["accuracy"]
    assert records["bf16"]["precision"] == "bf16" and records["fp32"]["precision"] == "fp32"
    assert accuracy["fp32"] > 0.85
    assert within_noise(accuracy["bf16"], accuracy["fp32"], len(digits.test)), accuracy


def test_auto_precision_probes_only_runs_long_enough_to_pay(digits: Dataset) -> None:
    record = train(small_cnn(10, 1), digits.train, 8, TrainConfig(epochs=1, precision="auto"), show_progress=False)
    assert record["precision"] == "fp32" and str(PROBE_MIN_STEPS) in record["probe"]
    probe = probe_precision(small_cnn(10, 1), torch.randn(8, 1, 8, 8), repeats=1)
    assert probe["choice"] in ("fp32", "bf16") and set(probe["seconds_per_step"]) == {"fp32", "bf16"}
    with pytest.raises(CompressorError, match="precision must be one of fp32, bf16, auto; got 'fp16'"):
        train(small_cnn(10, 1), digits.train, 8, TrainConfig(epochs=1, precision="fp16"), show_progress=False)


def test_processes_asking_for_one_baseline_at_once_train_it_once(digits: Dataset, tmp_path, monkeypatch) -> None:
    import threading
    import time

    import compressor.models.baselines as baselines

    trained = []

    def slow_train(request: BaselineRequest, dataset: Dataset, **_: object) -> Checkpoint:
        trained.append(request)
        time.sleep(0.5)  # long enough that the second asker arrives while the first trains
        spec = ModelSpec("resnet18", 10, 1, 16, "digits", dataset.info.classes, dataset.info.mean, dataset.info.std)
        return Checkpoint(spec, build_model("resnet18", 10, 1))

    monkeypatch.setattr(baselines, "train_baseline", slow_train)
    got = []
    askers = [threading.Thread(target=lambda: got.append(baselines.get_baseline(
        BaselineRequest("resnet18"), digits, cache_dir=tmp_path, show_progress=False))) for _ in range(2)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(timeout=120)
    assert len(trained) == 1, "the second asker waited for the first and loaded what it saved"
    assert len(got) == 2 and got[0][1] == got[1][1] and got[0][1].exists()
