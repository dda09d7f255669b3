"""Baselines: train a classifier for an architecture and dataset once, cache its checkpoint, reuse it."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from rich.console import Console

from compressor._util.device import resolve_device
from compressor.data import Dataset, dataset_slug, default_cache_dir
from compressor.errors import CompressorError
from compressor.models.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint
from compressor.models.training import TrainConfig, steps_per_epoch, train, whole_if_integral
from compressor.models.zoo import arch_slug, build_model, input_size_for

DEFAULT_EPOCHS = {"digits": 15, "fashion-mnist": 8, "cifar10": 30, "cifar100": 30}


@dataclass(frozen=True)
class Recipe:
    """How a baseline is trained: a named set of training settings; the cache key covers every one of them."""

    description: str
    lr: float = 0.05
    epochs: int | None = None  # None: the dataset's default (DEFAULT_EPOCHS)
    label_smoothing: float = 0.0
    random_erasing: float = 0.0
    ema_decay: float = 0.0
    precision: str = "fp32"


RECIPES = {
    "standard": Recipe("one-cycle SGD at peak LR 0.05, shifts (+ flips where allowed), fp32"),
    "anchor": Recipe("10 epochs, one-cycle SGD at peak LR 0.1, shifts, random erasing 0.25, label smoothing 0.1, "
                     "EMA of weights 0.998, fastest precision by probe; with --arch resnet18-s1 it is the "
                     "small-input ResNet18 recipe", lr=0.1, epochs=10, label_smoothing=0.1, random_erasing=0.25,
                     ema_decay=0.998, precision="auto"),
}
DEFAULT_RECIPE = "standard"
# A baseline trained from scratch needs enough optimizer steps, not only epochs: on a small dataset a short run halves
# its batch (down to MIN_BASELINE_BATCH) until it has MIN_BASELINE_STEPS. Measured on digits (1,293 training images,
# 3 epochs): MobileNetV3-Small stays at chance after 33 steps of 128 images and reaches 78 % after 123 steps of 32.
# Default runs on the built-in datasets already have the steps and keep the batch of 128.
MIN_BASELINE_STEPS = 120
MIN_BASELINE_BATCH = 16
FINETUNE_LR_FACTOR = 0.2  # recovery fine-tuning peaks at this fraction of the baseline's peak LR


@dataclass(frozen=True)
class BaselineRequest:
    """Which baseline to train: architecture, input size, recipe (epochs and LR override it) and seed."""

    arch: str
    input_size: int | None = None
    epochs: int | None = None
    lr: float | None = None
    seed: int = 0
    pretrained: bool = False
    recipe: str = DEFAULT_RECIPE
    precision: str | None = None  # None: the recipe's


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`, or a one-line error listing the recipes."""
    if name not in RECIPES:
        raise CompressorError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def default_epochs(dataset_name: str) -> int:
    """Baseline training epochs for a dataset (10 for ImageFolders)."""
    return DEFAULT_EPOCHS.get(dataset_name, 10)


def baseline_batch_size(epochs: float, train_samples: int, batch_size: int = TrainConfig.batch_size) -> int:
    """The training batch of a baseline: `batch_size`, halved (not below MIN_BASELINE_BATCH) while `epochs` over
    `train_samples` images would give fewer than MIN_BASELINE_STEPS optimizer steps."""
    while batch_size > MIN_BASELINE_BATCH and epochs * steps_per_epoch(train_samples, batch_size) < MIN_BASELINE_STEPS:
        batch_size //= 2
    return max(batch_size, MIN_BASELINE_BATCH)


def training_config(request: BaselineRequest, dataset_name: str, train_samples: int | None = None) -> TrainConfig:
    """The full training settings of `request` on `dataset_name`: the recipe's, with explicit epochs/LR on top, and
    the batch shrunk for a short run on a small training split (`train_samples` images, when given)."""
    recipe = get_recipe(request.recipe)
    epochs = request.epochs if request.epochs is not None else recipe.epochs or default_epochs(dataset_name)
    batch = TrainConfig.batch_size if train_samples is None else baseline_batch_size(epochs, train_samples)
    return TrainConfig(epochs=epochs, lr=request.lr if request.lr is not None else recipe.lr, seed=request.seed,
                       batch_size=batch, label_smoothing=recipe.label_smoothing, random_erasing=recipe.random_erasing,
                       ema_decay=recipe.ema_decay, precision=request.precision or recipe.precision)


def baseline_finetune_lr(checkpoint: Checkpoint, default: float | None) -> float | None:
    """FINETUNE_LR_FACTOR x the peak LR the checkpoint was trained with (from its history), else `default`."""
    lrs = [entry["lr"] for entry in checkpoint.history if entry.get("step") == "train" and "lr" in entry]
    return FINETUNE_LR_FACTOR * float(lrs[-1]) if lrs else default


def model_spec(arch: str, dataset: Dataset, input_size: int) -> ModelSpec:
    """The spec of a model of `arch` trained on `dataset` at `input_size`."""
    info = dataset.info
    return ModelSpec(arch=arch, num_classes=info.num_classes, in_channels=info.channels, input_size=input_size,
                     dataset=info.name, classes=info.classes, mean=info.mean, std=info.std)


def baseline_path(request: BaselineRequest, dataset: Dataset, cache_dir: Path | None = None) -> Path:
    """Cache file of the baseline described by `request` on `dataset`; its name carries a digest of every training
    setting, so a changed recipe never silently reuses an old file."""
    size = input_size_for(request.arch, dataset.info.native_size, request.input_size)
    config = asdict(training_config(request, dataset.info.name, len(dataset.train)))
    config.pop("freeze_batchnorm")  # a fine-tuning option, never set for baselines: cached names stay valid
    settings = json.dumps({"arch": request.arch, "size": size, "pretrained": request.pretrained,
                           "recipe": request.recipe, **config}, sort_keys=True)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:10]
    tag = "-pretrained" if request.pretrained else ""
    name = (f"{arch_slug(request.arch)}-{dataset_slug(dataset.info.name)}-{size}px-{request.recipe}-"
            f"e{whole_if_integral(config['epochs'])}-s{request.seed}{tag}-{digest}.pt")
    return (cache_dir or default_cache_dir()) / "baselines" / name


def train_baseline(request: BaselineRequest, dataset: Dataset, *, show_progress: bool = True,
                   device: str | torch.device = "cpu") -> Checkpoint:
    """Train a fresh baseline on the train split (calib and test are held out) on `device`; returned on the CPU."""
    size = input_size_for(request.arch, dataset.info.native_size, request.input_size)
    config = training_config(request, dataset.info.name, len(dataset.train))
    if config.epochs < 1:
        raise CompressorError(f"--epochs must be at least 1 to train a baseline; got {config.epochs}")
    torch.manual_seed(request.seed)
    model = build_model(request.arch, dataset.info.num_classes, dataset.info.channels,
                        pretrained=request.pretrained)
    model.to(resolve_device(device))
    stats = train(model, dataset.train, size, config, description=f"train {request.arch} on {dataset.info.name}",
                  show_progress=show_progress)
    model.cpu()
    return Checkpoint(model_spec(request.arch, dataset, size), model,
                      history=[{"step": "train", "pretrained": request.pretrained, "recipe": request.recipe,
                                **stats}])


def get_baseline(request: BaselineRequest, dataset: Dataset, *, cache_dir: Path | None = None,
                 show_progress: bool = True, console: Console | None = None,
                 device: str | torch.device = "cpu") -> tuple[Checkpoint, Path]:
    """The cached baseline for `request`, training and caching it first if there is none (or it is unreadable).

    Processes that ask for the same baseline at once (sweep jobs starting cold) train it once: the first holds a
    lock file beside it while it trains, the others wait and then load what it saved."""
    path = baseline_path(request, dataset, cache_dir)
    console = console or Console(stderr=True)
    with _only_one_trainer(path, console):
        if path.exists():
            try:
                checkpoint = load_checkpoint(path)
                console.print(f"[dim]using cached baseline {path}[/dim]")
                return checkpoint, path
            except CompressorError as exc:
                console.print(f"[yellow]cached baseline unusable, retraining: {exc}[/yellow]")
        checkpoint = train_baseline(request, dataset, show_progress=show_progress, device=device)
        save_checkpoint(checkpoint, path)
        console.print(f"[dim]cached baseline at {path}[/dim]")
        return checkpoint, path


@contextlib.contextmanager
def _only_one_trainer(path: Path, console: Console) -> Iterator[None]:
    """Hold `PATH.lock` for the block, saying so when another process holds it; without a writable cache
    directory (a read-only shared cache), go on unlocked: then nothing can be trained into it anyway."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            console.print(f"[dim]another process is training this baseline; waiting for it ({path}.lock)[/dim]")
            lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()
