"""Training loop: learns, holds masked weights at exactly zero, stops clearly on divergence."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compressor.data import Dataset
from compressor.errors import CompressorError
from compressor.measure.accuracy import evaluate, torch_forward
from compressor.models.training import TrainConfig, train


def test_tiny_net_learns_digits(tiny_net: nn.Module, digits: Dataset) -> None:
    before = evaluate(torch_forward(tiny_net), digits.test, 8)["accuracy"]
    train(tiny_net, digits.train, 8, TrainConfig(epochs=4, lr=0.2), show_progress=False)
    after = evaluate(torch_forward(tiny_net), digits.test, 8)["accuracy"]
    assert after > max(0.5, before + 0.3)


def test_masked_weights_stay_exactly_zero(tiny_net: nn.Module, digits: Dataset) -> None:
    keep = torch.rand_like(tiny_net.conv1.weight) > 0.5
    with torch.no_grad():
        tiny_net.conv1.weight.mul_(keep)
    train(tiny_net, digits.train, 8, TrainConfig(epochs=1), masks={"conv1.weight": keep}, show_progress=False)
    assert torch.all(tiny_net.conv1.weight[~keep] == 0)
    assert torch.all(tiny_net.conv1.weight[keep] != 0)


def test_fractional_epochs_run_that_share_of_the_steps(tiny_net: nn.Module, digits: Dataset) -> None:
    from compressor.models.training import steps_per_epoch

    record = train(tiny_net, digits.train, 8, TrainConfig(epochs=0.25, batch_size=32), show_progress=False)
    assert record["steps"] == -(-steps_per_epoch(len(digits.train), 32) // 4)
    record = train(tiny_net, digits.train, 8, TrainConfig(epochs=1.5, batch_size=32), show_progress=False)
    assert record["steps"] == -(-steps_per_epoch(len(digits.train), 32) * 3 // 2)


def test_divergence_stops_with_a_clear_message(tiny_net: nn.Module, digits: Dataset) -> None:
    with pytest.raises(CompressorError, match="training diverged: loss is .* at epoch 1, step"):
        train(tiny_net, digits.train, 8, TrainConfig(epochs=1, lr=1e6), show_progress=False)


def test_batchnorm_recalibration_estimates_running_stats_from_data(tiny_net: nn.Module, digits: Dataset) -> None:
    from compressor.recovery.batchnorm import recalibrate_batchnorm

    tiny_net.bn.running_mean.fill_(100.0)
    weights = tiny_net.stem.weight.clone()
    seen = recalibrate_batchnorm(tiny_net, digits.train, 8, batches=2, batch_size=64)
    assert seen == 128 and tiny_net.bn.momentum == 0.1 and not tiny_net.training
    x, _ = next(digits.train.batches(8, 2000))
    with torch.no_grad():
        stem = tiny_net.stem(x)
    assert torch.allclose(tiny_net.bn.running_mean, stem.mean(dim=(0, 2, 3)), atol=0.1)
    assert torch.equal(tiny_net.stem.weight, weights)


def test_zero_masks_cover_exactly_the_zeroed_weights(tiny_net: nn.Module) -> None:
    from compressor.models.training import zero_masks

    with torch.no_grad():
        tiny_net.conv1.weight[0] = 0
    masks = zero_masks(tiny_net)
    assert set(masks) == {"conv1.weight"} and int((~masks["conv1.weight"]).sum()) == tiny_net.conv1.weight[0].numel()


def fresh_tiny_net(seed: int) -> nn.Module:
    """A TinyNet initialized from `seed` (several identical or different ones in one test)."""
    from conftest import TinyNet

    torch.manual_seed(seed)
    return TinyNet()


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 7, 8])
def test_every_budget_runs_even_a_few_steps(tiny_net: nn.Module, digits: Dataset, steps: int) -> None:
    from compressor.models.training import steps_per_epoch

    keep = torch.rand_like(tiny_net.conv1.weight) > 0.5
    with torch.no_grad():
        tiny_net.conv1.weight.mul_(keep)
    per_epoch = steps_per_epoch(len(digits.train), 128)
    record = train(tiny_net, digits.train, 8, TrainConfig(epochs=steps / per_epoch, lr=0.05),
                   masks={"conv1.weight": keep}, show_progress=False)
    assert record["steps"] == steps
    assert record["schedule"] == ("one-cycle" if steps >= 8 else "linear-decay")  # OneCycleLR failed at 4 steps
    assert torch.isfinite(torch.tensor(record["final_loss"]))
    assert torch.all(tiny_net.conv1.weight[~keep] == 0)


def test_distillation_loss_is_cross_entropy_at_alpha_0_and_the_softened_kl_at_alpha_1() -> None:
    from compressor.models.training import distillation_loss

    torch.manual_seed(0)
    student, teacher, labels = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    assert torch.allclose(distillation_loss(student, teacher, labels, 0.0, 4.0),
                          nn.functional.cross_entropy(student, labels))
    smoothed = distillation_loss(student, teacher, labels, 0.0, 4.0, label_smoothing=0.1)
    assert torch.allclose(smoothed, nn.functional.cross_entropy(student, labels, label_smoothing=0.1))
    assert not torch.allclose(smoothed, nn.functional.cross_entropy(student, labels))
    assert distillation_loss(teacher, teacher, labels, 1.0, 3.0).abs() < 1e-6
    p = torch.softmax(teacher / 2.0, dim=1)
    kl = (p * (p.log() - torch.log_softmax(student / 2.0, dim=1))).sum(dim=1).mean()
    assert torch.allclose(distillation_loss(student, teacher, labels, 1.0, 2.0), 4.0 * kl)


def test_distilling_with_alpha_0_trains_exactly_like_plain_fine_tuning(digits: Dataset) -> None:
    teacher = fresh_tiny_net(seed=1)
    plain, distilled = fresh_tiny_net(seed=0), fresh_tiny_net(seed=0)
    config = TrainConfig(epochs=0.5, lr=0.05, distill_alpha=0.0)
    train(plain, digits.train, 8, config, show_progress=False)
    record = train(distilled, digits.train, 8, config, show_progress=False, teacher=teacher)
    assert record["distill_alpha"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), distilled.state_dict().values()))


def test_distilling_pulls_the_student_towards_the_teacher_more_than_plain_training(digits: Dataset) -> None:
    teacher = fresh_tiny_net(seed=1)
    train(teacher, digits.train, 8, TrainConfig(epochs=6, lr=0.2), show_progress=False)
    x, _ = next(digits.test.batches(8, 512))

    def gap(alpha: float) -> float:
        """KL(teacher ‖ student) on test images after the same budget with distillation weight `alpha`."""
        student = fresh_tiny_net(seed=0)
        train(student, digits.train, 8, TrainConfig(epochs=2, lr=0.2, distill_alpha=alpha, distill_temperature=2.0),
              show_progress=False, teacher=teacher)
        with torch.no_grad():
            return float(nn.functional.kl_div(torch.log_softmax(student(x), 1), torch.log_softmax(teacher(x), 1),
                                              reduction="batchmean", log_target=True))

    assert gap(1.0) < 0.85 * gap(0.0)  # measured: 1.43 vs 1.82


def test_progress_goes_to_stderr_so_stdout_carries_only_results(tiny_net: nn.Module, digits: Dataset,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    train(tiny_net, digits.train, 8, TrainConfig(epochs=1, batch_size=64), description="train tiny")
    out, err = capfd.readouterr()
    assert out == ""  # `compressor run > table.txt` must not fill the file with training log lines
    assert "train tiny: epoch 1/1 step" in err  # not a terminal: the progress is logged as lines, on stderr


def test_a_network_built_with_slow_batchnorm_momentum_learns_statistics_that_track_the_data(
        tiny_net: nn.Module, digits: Dataset) -> None:
    norms = [m for m in tiny_net.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.momentum = 0.01  # as torchvision builds MobileNetV3 and EfficientNet
    record = train(tiny_net, digits.train, 8, TrainConfig(epochs=4, lr=0.2), show_progress=False)
    assert record["batchnorm_momentum_raised"] == {"layers": 2, "from": 0.01, "to": 0.1}
    assert {norm.momentum for norm in norms} == {0.01}, "the model keeps the momentum it was built with"
    eval_mode = evaluate(torch_forward(tiny_net), digits.test, 8)["accuracy"]
    for norm in norms:  # the statistics the running averages should have tracked: those of the data
        norm.reset_running_stats()
        norm.momentum = None
    tiny_net.train()
    with torch.no_grad():
        for x, _ in digits.train.batches(8, 256):
            tiny_net(x)
    exact = evaluate(torch_forward(tiny_net.eval()), digits.test, 8)["accuracy"]
    assert abs(eval_mode - exact) <= 3 * within_noise_se(exact, len(digits.test)), (eval_mode, exact)


def within_noise_se(p: float, n: int) -> float:
    """The binomial standard error of an accuracy `p` on `n` images, at least one image's worth."""
    return max((p * (1 - p) / n) ** 0.5, 1 / n)
