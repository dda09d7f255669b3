"""One training loop (SGD + Nesterov, one-cycle LR, rich progress) for baselines and recovery fine-tuning, with
optional knowledge distillation from a teacher, random erasing, an EMA of the weights and bf16 numerics."""

from __future__ import annotations

import contextlib
import copy
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.optim.swa_utils import AveragedModel

from compressor.data import Split
from compressor.errors import CompressorError, RuntimeFailure
from compressor.models.zoo import PRUNABLE_TYPES


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: float  # fractions allowed: 0.25 runs the first quarter of one shuffled epoch
    lr: float = 0.1
    batch_size: int = 128
    weight_decay: float = 5e-4
    momentum: float = 0.9
    augment: bool = True
    seed: int = 0
    label_smoothing: float = 0.0
    distill_alpha: float = 0.5  # weight of the distillation term when a teacher is given
    distill_temperature: float = 4.0
    random_erasing: float = 0.0  # probability that an image gets a random rectangle erased (Zhong et al., 2020)
    ema_decay: float = 0.0  # > 0: the model ends with an exponential moving average of its weights and buffers
    precision: str = "fp32"  # fp32 | bf16 (autocast + channels_last) | auto (a short probe picks the faster)
    freeze_batchnorm: bool = False  # BatchNorm keeps its running statistics (eval mode); its affine terms still train


PRECISIONS = ("fp32", "bf16", "auto")
ONE_CYCLE_PCT_START = 0.25
# torchvision's MobileNetV3 and EfficientNet ship BatchNorm momentum 0.01, tuned for ImageNet-length schedules: over
# the few hundred steps of a baseline or a fine-tune their running statistics barely leave their initial values and
# the trained model predicts chance in eval mode (measured: MobileNetV3-Small on digits, 10 % after 3 and 15 epochs).
# Training raises such momenta to this for its duration.
MIN_BN_MOMENTUM = 0.1
MIN_WARMUP_STEPS = 2  # below this a one-cycle warm-up degenerates (OneCycleLR divides by zero at 4 steps)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, alpha: float,
                      temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """α·T²·KL(teacher ‖ student) on temperature-softened outputs + (1−α)·cross-entropy (Hinton et al., 2015)."""
    soft = nn.functional.kl_div(nn.functional.log_softmax(student / temperature, dim=1),
                                nn.functional.log_softmax(teacher / temperature, dim=1),
                                reduction="batchmean", log_target=True)
    hard = nn.functional.cross_entropy(student, labels, label_smoothing=label_smoothing)
    return alpha * temperature ** 2 * soft + (1 - alpha) * hard


def lr_scheduler(optimizer: torch.optim.Optimizer, peak: float, total: int) -> tuple[Any, str]:
    """One-cycle (warm-up then cosine decay) when the run is long enough for a warm-up, else a linear decay from
    the peak; and the schedule's name for the record."""
    if ONE_CYCLE_PCT_START * total >= MIN_WARMUP_STEPS:
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=total,
                                                   pct_start=ONE_CYCLE_PCT_START), "one-cycle"
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / total), "linear-decay"


def erase_randomly(x: torch.Tensor, probability: float) -> torch.Tensor:
    """Random erasing: each image, with `probability`, gets one random rectangle (2-33 % of its area, aspect
    0.3-3.3) set to zero, the data mean after normalization; uses torch's global generator."""
    from torchvision.transforms import RandomErasing

    if probability <= 0:
        return x
    picked = (torch.rand(len(x)) < probability).nonzero().flatten().tolist()
    x = x.clone() if picked else x
    for i in picked:
        top, left, height, width, _ = RandomErasing.get_params(x[i], scale=(0.02, 0.33), ratio=(0.3, 3.3), value=[0.0])
        x[i, :, top:top + height, left:left + width] = 0.0
    return x


def ema_update(decay: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | int], torch.Tensor]:
    """The EMA step for AveragedModel, with the decay warmed up as min(decay, (1 + n) / (10 + n)) so that short
    runs are not dominated by the initial weights."""

    def update(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor | int) -> torch.Tensor:
        steps = int(n)
        weight = min(decay, (1 + steps) / (10 + steps))
        if not averaged.is_floating_point():
            return current
        return averaged.lerp(current, 1 - weight)

    return update


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on `device` for "bf16"; a no-op for "fp32"."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


PROBE_MIN_STEPS = 100  # shorter runs train in fp32: a probe could not pay for itself
PROBE_MIN_GAIN = 1.2  # bf16 is chosen only when at least this much faster per step


def probe_precision(model: nn.Module, batch: torch.Tensor, *, repeats: int = 3) -> dict[str, Any]:
    """Time one SGD step of a copy of `model` on `batch` in fp32 and in bf16 + channels_last; pick bf16 only
    when it is at least PROBE_MIN_GAIN times faster. Returns the choice and the median seconds per step."""
    seconds = {}
    for precision in ("fp32", "bf16"):
        trial = copy.deepcopy(model).train()
        x = batch.clone()
        if precision == "bf16":
            trial.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(trial.parameters(), lr=1e-6)
        times = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            with autocast(precision, x.device):
                loss = trial(x).float().logsumexp(1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if x.device.type == "cuda":
                torch.cuda.synchronize(x.device)
            times.append(time.perf_counter() - start)
        seconds[precision] = round(statistics.median(times[1:]), 4)
    choice = "bf16" if seconds["fp32"] >= PROBE_MIN_GAIN * seconds["bf16"] else "fp32"
    return {"choice": choice, "seconds_per_step": seconds}


def whole_if_integral(epochs: float) -> int | float:
    """1.0 -> 1, 0.25 -> 0.25: epoch counts print, hash and compare the same however they were typed."""
    return int(epochs) if float(epochs).is_integer() else float(epochs)


def steps_per_epoch(n_samples: int, batch_size: int) -> int:
    """Number of optimizer steps in one epoch (the last, partial batch included)."""
    return math.ceil(n_samples / batch_size)


def zero_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Keep-masks of every conv/linear weight that holds exact zeros, so fine-tuning keeps them at zero."""
    masks = {}
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            keep = module.weight.detach() != 0
            if not bool(keep.all()):
                masks[f"{name}.weight"] = keep
    return masks


def _numerics(model: nn.Module, split: Split, input_size: int, config: TrainConfig, total: int,
              device: torch.device) -> dict[str, Any]:
    """The precision this run trains in, and the probe that chose it (for "auto" runs long enough to probe)."""
    if config.precision != "auto":
        return {"precision": config.precision}
    if total < PROBE_MIN_STEPS:
        return {"precision": "fp32", "probe": f"skipped: {total} steps < {PROBE_MIN_STEPS}"}
    x, _ = next(iter(split.batches(input_size, config.batch_size, shuffle=True, seed=config.seed)))
    try:
        probe = probe_precision(model, x.to(device))
    except RuntimeError as exc:  # a device without bf16 autocast
        return {"precision": "fp32", "probe": f"bf16 unavailable: {str(exc).splitlines()[0]}"}
    return {"precision": probe["choice"], "probe": probe["seconds_per_step"]}


def train(model: nn.Module, split: Split, input_size: int, config: TrainConfig, *,
          masks: dict[str, torch.Tensor] | None = None, description: str = "train",
          show_progress: bool = True, teacher: nn.Module | None = None) -> dict[str, Any]:
    """Train `model` in place on `split`; weights outside `masks` (name -> keep) stay exactly zero. With a
    `teacher`, the loss distils its outputs on the same (augmented) batch into the model."""
    if config.epochs <= 0:
        return {"epochs": 0, "steps": 0, "seconds": 0.0, **asdict(config)}
    if config.precision not in PRECISIONS:
        raise CompressorError(f"precision must be one of {', '.join(PRECISIONS)}; got {config.precision!r}")
    torch.manual_seed(config.seed)
    params = dict(model.named_parameters())
    masks = {name: mask.to(params[name].device) for name, mask in (masks or {}).items()}
    decay = [p for n, p in params.items() if p.ndim > 1]
    no_decay = [p for n, p in params.items() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=config.lr, momentum=config.momentum, nesterov=True)
    per_epoch = steps_per_epoch(len(split), config.batch_size)
    total = math.ceil(per_epoch * config.epochs)
    scheduler, schedule = lr_scheduler(optimizer, config.lr, total)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    device = next(model.parameters()).device
    numerics = _numerics(model, split, input_size, config, total, device)
    channels_last = numerics["precision"] == "bf16"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if teacher is not None:
        teacher.to(device).eval()
        if channels_last:
            teacher.to(memory_format=torch.channels_last)
    average = (AveragedModel(model, avg_fn=ema_update(config.ema_decay), use_buffers=True)
               if config.ema_decay > 0 else None)
    model.train()
    if config.freeze_batchnorm:
        for norm in batchnorms(model):
            norm.eval()
    slow = [(norm, norm.momentum) for norm in batchnorms(model)
            if norm.momentum is not None and norm.momentum < MIN_BN_MOMENTUM]
    for norm, _ in slow:
        norm.momentum = MIN_BN_MOMENTUM
    start = time.perf_counter()
    step, seen, correct, running = 0, 0, 0, 0.0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    # progress goes to stderr (stdout carries only results, so it can be piped); off a terminal the per-step log
    # lines below stand for the bar, whose last frame would only repeat them
    console = Console(stderr=True)
    with Progress(*columns, disable=not show_progress, transient=not console.is_terminal, console=console) as progress:
        task = progress.add_task(description, total=total, info="")
        log_every = max(1, per_epoch // 10) if show_progress and not progress.console.is_terminal else 0
        for epoch in range(math.ceil(config.epochs)):
            for x, y in split.batches(input_size, config.batch_size, shuffle=True, augment=config.augment,
                                      seed=config.seed * 1000 + epoch):
                x, y = erase_randomly(x, config.random_erasing).to(device), y.to(device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(numerics["precision"], device):
                    logits = model(x).float()
                    if teacher is not None:
                        with torch.no_grad():
                            targets = teacher(x).float()
                if teacher is None:
                    loss = loss_fn(logits, y)
                else:
                    loss = distillation_loss(logits, targets, y, config.distill_alpha, config.distill_temperature,
                                             config.label_smoothing)
                if not torch.isfinite(loss):
                    raise RuntimeFailure(f"training diverged: loss is {loss.item()} at epoch {epoch + 1}, step "
                                         f"{step + 1}; lower the learning rate (now {config.lr})")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if masks:
                    with torch.no_grad():
                        for name, keep in masks.items():
                            params[name].masked_fill_(~keep, 0.0)
                if average is not None:
                    average.update_parameters(model)
                step += 1
                seen += len(y)
                correct += int((logits.argmax(1) == y).sum())
                running = 0.9 * running + 0.1 * loss.item() if step > 1 else loss.item()
                progress.update(task, advance=1, info=f"epoch {epoch + 1}/{config.epochs:g} loss {running:.3f} "
                                                      f"acc {correct / seen:.3f}")
                if log_every and step % log_every == 0:
                    progress.console.print(f"{description}: epoch {epoch + 1}/{config.epochs:g} step {step}/{total} "
                                           f"loss {running:.4f} acc {correct / seen:.3f} "
                                           f"{time.perf_counter() - start:.0f} s")
                if step == total:
                    break
            seen, correct = 0, 0
    for norm, momentum in slow:  # the model keeps the momentum it was built with (and its checkpoint no edit)
        norm.momentum = momentum
    if average is not None:
        with torch.no_grad():
            for mine, averaged in zip([*model.parameters(), *model.buffers()],
                                      [*average.module.parameters(), *average.module.buffers()]):
                mine.copy_(averaged)
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    record = {"epochs": config.epochs, "steps": step, "seconds": round(time.perf_counter() - start, 2),
              "final_loss": round(running, 4), "schedule": schedule, **asdict(config), **numerics}
    if slow:
        record["batchnorm_momentum_raised"] = {"layers": len(slow), "from": slow[0][1], "to": MIN_BN_MOMENTUM}
    if teacher is None:
        record.pop("distill_alpha")
        record.pop("distill_temperature")
    return record


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of `model`."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
