"""Linear evaluation: frozen encoder features (computed once, cached), a linear classifier trained on them."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from compressor._util.device import resolve_device
from compressor._util.fileio import save_torch_atomic
from compressor.data import Dataset, Split, dataset_slug, default_cache_dir
from compressor.errors import CompressorError
from compressor.measure.accuracy import classification_metrics
from compressor.models.checkpoint import Checkpoint
from compressor.recovery.head import LinearConfig, fit_linear
from supcon.model import to_classifier
from supcon.pretrain import PretrainConfig, build_pretrained, load_pretrain_checkpoint


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


def linear_evaluation(pretrained: Path, dataset: Dataset, config: LinearConfig, *, cache_dir: Path | None = None,
                      show_progress: bool = True, device: str | torch.device = "cpu"
                      ) -> tuple[Checkpoint, dict[str, Any]]:
    """Freeze the pre-trained encoder, fit a linear head on its train features, and return the classifier.

    Features are extracted on `device`; the classifier comes back on the CPU. Calibration-split metrics are
    reported for monitoring; the test split is evaluated once, at the end.
    """
    from compressor.models.baselines import model_spec

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
