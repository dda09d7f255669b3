"""Linear evaluation: frozen encoder features (computed once, cached), a linear classifier trained on them."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from compressor.checkpoint import Checkpoint
from compressor.data import Dataset, Split, dataset_slug, default_cache_dir
from compressor.device import resolve_device
from compressor.errors import CompressorError
from compressor.fileio import save_torch_atomic
from compressor.measure.accuracy import classification_metrics
from supcon.model import to_classifier
from supcon.pretrain import PretrainConfig, build_pretrained, load_pretrain_checkpoint


@dataclass(frozen=True)
class LinearConfig:
    """Training of the linear classifier on standardized features (SGD + Nesterov, cosine schedule)."""

    epochs: int = 30
    lr: float = 0.1
    batch_size: int = 256
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise CompressorError(f"linear epochs and batch size must be at least 1; got {self.epochs}, "
                                  f"{self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise CompressorError(f"linear lr must be positive and weight decay not negative; got {self.lr}, "
                                  f"{self.weight_decay}")


def encode(encoder: nn.Module, split: Split, input_size: int, *, batch_size: int = 256, description: str = "",
           show_progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [N, width] and labels [N] of `split` from `encoder` in eval mode, in split order."""
    encoder.eval()
    device = next(encoder.parameters()).device
    features, labels = [], []
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not show_progress, console=Console(stderr=True)) as progress:
        task = progress.add_task(description or "features", total=len(split))
        with torch.inference_mode():
            for x, y in split.batches(input_size, batch_size):
                features.append(encoder(x.to(device)).float().cpu())
                labels.append(y)
                progress.update(task, advance=len(y))
    return torch.cat(features), torch.cat(labels)


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256 (the feature cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def cached_features(encoder: nn.Module, dataset: Dataset, split_name: str, input_size: int, key: str,
                    cache_dir: Path | None, show_progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of one split, read from the cache when this checkpoint's were computed before."""
    name = f"{key}-{dataset_slug(dataset.info.name)}-{split_name}-{input_size}px.pt"
    path = (cache_dir or default_cache_dir()) / "features" / name
    if path.exists():
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            return stored["features"], stored["labels"]
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            pass
    features, labels = encode(encoder, getattr(dataset, split_name), input_size,
                              description=f"features {split_name}", show_progress=show_progress)
    save_torch_atomic({"features": features, "labels": labels}, path)
    return features, labels


def fit_linear(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
               config: LinearConfig) -> tuple[nn.Linear, list[float]]:
    """A linear classifier on `features` whose standardization (train mean/std) is folded into its weights."""
    torch.manual_seed(config.seed)
    mean, std = features.mean(0), features.std(0).clamp(min=1e-6)
    standardized = (features - mean) / std
    linear = nn.Linear(features.shape[1], num_classes)
    optimizer = torch.optim.SGD(linear.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    losses = []
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        order = torch.randperm(len(labels), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            index = order[start:start + config.batch_size]
            loss = nn.functional.cross_entropy(linear(standardized[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        scheduler.step()
        losses.append(total / len(labels))
    folded = nn.Linear(features.shape[1], num_classes)
    with torch.no_grad():
        folded.weight.copy_(linear.weight / std)
        folded.bias.copy_(linear.bias - (linear.weight * (mean / std)).sum(1))
    return folded, losses


def linear_evaluation(pretrained: Path, dataset: Dataset, config: LinearConfig, *, cache_dir: Path | None = None,
                      show_progress: bool = True, device: str | torch.device = "cpu") -> tuple[Checkpoint, dict[str, Any]]:
    """Freeze the pre-trained encoder, fit a linear head on its train features, and return the classifier.

    Features are extracted on `device`; the classifier comes back on the CPU. Calibration-split metrics are
    reported for monitoring; the test split is evaluated once, at the end.
    """
    from compressor.baseline import model_spec

    state = load_pretrain_checkpoint(pretrained)
    if state["dataset"]["name"] != dataset.info.name:
        raise CompressorError(f"{pretrained} was pre-trained on {state['dataset']['name']}, not "
                              f"{dataset.info.name}")
    pretrain_config = PretrainConfig.from_dict(state["config"])
    model = build_pretrained(state)
    input_size = int(state["input_size"])
    key = file_digest(pretrained)
    started = time.perf_counter()
    model.encoder.to(resolve_device(device))
    splits = {name: cached_features(model.encoder, dataset, name, input_size, key, cache_dir, show_progress)
              for name in ("train", "calib", "test")}
    model.encoder.cpu()
    extracted = time.perf_counter()
    linear, losses = fit_linear(*splits["train"], dataset.info.num_classes, config)
    metrics = {name: classification_metrics((features @ linear.weight.T + linear.bias).detach().numpy(),
                                            labels.numpy())
               for name, (features, labels) in splits.items()}
    classifier = to_classifier(pretrain_config.arch, model.encoder, linear, dataset.info.channels)
    record = {"step": "supcon-linear", "pretrained": str(pretrained), "pretrain_epochs": int(state["epoch"]),
              "pretrain_seconds": round(sum(r["seconds"] for r in state["history"]), 2),
              "pretrain_config": state["config"], "feature_seconds": round(extracted - started, 2),
              "fit_seconds": round(time.perf_counter() - extracted, 2), "final_loss": round(losses[-1], 4),
              **asdict(config), "train": metrics["train"], "calib": metrics["calib"], "test": metrics["test"]}
    spec = model_spec(pretrain_config.arch, dataset, input_size)
    return Checkpoint(spec, classifier, history=[record]), record
