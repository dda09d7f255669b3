"""Baselines: train a classifier for an architecture and dataset once, cache its checkpoint, reuse it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from compressor.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint
from compressor.data import Dataset, dataset_slug, default_cache_dir
from compressor.device import resolve_device
from compressor.errors import CompressorError
from compressor.models import arch_slug, build_model, input_size_for
from compressor.train import TrainConfig, train

DEFAULT_EPOCHS = {"digits": 15, "fashion-mnist": 8, "cifar10": 30, "cifar100": 30}
DEFAULT_LR = 0.05


@dataclass(frozen=True)
class BaselineRequest:
    """Which baseline to train: architecture, input size, optimisation budget and seed."""

    arch: str
    input_size: int | None = None
    epochs: int | None = None
    lr: float = DEFAULT_LR
    seed: int = 0
    pretrained: bool = False


def default_epochs(dataset_name: str) -> int:
    """Baseline training epochs for a dataset (10 for ImageFolders)."""
    return DEFAULT_EPOCHS.get(dataset_name, 10)


def model_spec(arch: str, dataset: Dataset, input_size: int) -> ModelSpec:
    """The spec of a model of `arch` trained on `dataset` at `input_size`."""
    info = dataset.info
    return ModelSpec(arch=arch, num_classes=info.num_classes, in_channels=info.channels, input_size=input_size,
                     dataset=info.name, classes=info.classes, mean=info.mean, std=info.std)


def baseline_path(request: BaselineRequest, dataset: Dataset, cache_dir: Path | None = None) -> Path:
    """Cache file of the baseline described by `request` on `dataset`."""
    size = input_size_for(request.arch, dataset.info.native_size, request.input_size)
    epochs = request.epochs if request.epochs is not None else default_epochs(dataset.info.name)
    tag = "-pretrained" if request.pretrained else ""
    name = (f"{arch_slug(request.arch)}-{dataset_slug(dataset.info.name)}-{size}px-e{epochs}-lr{request.lr:g}"
            f"-s{request.seed}{tag}.pt")
    return (cache_dir or default_cache_dir()) / "baselines" / name


def train_baseline(request: BaselineRequest, dataset: Dataset, *, show_progress: bool = True,
                   device: str | torch.device = "cpu") -> Checkpoint:
    """Train a fresh baseline on the train split (calib and test are held out) on `device`; returned on the CPU."""
    size = input_size_for(request.arch, dataset.info.native_size, request.input_size)
    epochs = request.epochs if request.epochs is not None else default_epochs(dataset.info.name)
    if epochs < 1:
        raise CompressorError(f"--epochs must be at least 1 to train a baseline; got {epochs}")
    torch.manual_seed(request.seed)
    model = build_model(request.arch, dataset.info.num_classes, dataset.info.channels,
                        pretrained=request.pretrained)
    config = TrainConfig(epochs=epochs, lr=request.lr, seed=request.seed)
    model.to(resolve_device(device))
    stats = train(model, dataset.train, size, config, description=f"train {request.arch} on {dataset.info.name}",
                  show_progress=show_progress)
    model.cpu()
    return Checkpoint(model_spec(request.arch, dataset, size), model,
                      history=[{"step": "train", "pretrained": request.pretrained, **stats}])


def get_baseline(request: BaselineRequest, dataset: Dataset, *, cache_dir: Path | None = None,
                 show_progress: bool = True, console: Console | None = None,
                 device: str | torch.device = "cpu") -> tuple[Checkpoint, Path]:
    """The cached baseline for `request`, training and caching it first if there is none (or it is unreadable)."""
    path = baseline_path(request, dataset, cache_dir)
    console = console or Console(stderr=True)
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
