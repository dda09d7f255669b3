"""SupCon pre-training: views -> encoder + head -> (distributed) SupCon loss, cosine LR with warm-up, resumable."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from compressor._util.fileio import load_torch_file, save_torch_atomic
from compressor.data import Dataset, DatasetInfo
from compressor.errors import CompressorError, RuntimeFailure
from compressor.models.zoo import input_size_for
from supcon.distributed import World, distributed_supcon_loss
from supcon.model import SupConModel
from supcon.views import ViewConfig, ViewMaker

FORMAT = "supcon.pretrain"
VERSION = 1
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class PretrainConfig:
    """Hyper-parameters of a pre-training run; `batch_size` counts images in the global batch (x views rows)."""

    arch: str = "densenet201"
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    weight_decay: float = 1e-4
    momentum: float = 0.9
    warmup_epochs: float = 0.5
    temperature: float = 0.1
    projection_dim: int = 128
    supervised: bool = True
    input_size: int | None = None
    seed: int = 0
    views: ViewConfig = field(default_factory=ViewConfig)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise CompressorError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size", "projection_dim"):
            if getattr(self, name) < 1:
                raise CompressorError(f"{name} must be at least 1; got {getattr(self, name)}")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise CompressorError(f"{name} must be positive; got {getattr(self, name)}")
        if self.warmup_epochs < 0 or self.weight_decay < 0:
            raise CompressorError("warmup_epochs and weight_decay must not be negative")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for checkpoints, which load with weights_only=True)."""
        data = asdict(self)
        data["views"] = {k: list(v) if isinstance(v, tuple) else v for k, v in data["views"].items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        """Inverse of `to_dict`; unknown keys are ignored so older checkpoints stay readable."""
        views = dict(data.get("views", {}))
        if "crop_scale" in views:
            views["crop_scale"] = tuple(views["crop_scale"])
        known = {f.name for f in fields(cls)} - {"views"}
        return cls(**{k: v for k, v in data.items() if k in known}, views=ViewConfig(**views))


def learning_rate(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up to `peak` over `warmup` steps, then cosine decay to zero at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def dataset_facts(info: DatasetInfo) -> dict[str, Any]:
    """What a checkpoint records about its dataset (to refuse resuming or evaluating on another one)."""
    return {"name": info.name, "classes": list(info.classes), "channels": info.channels,
            "mean": list(info.mean), "std": list(info.std)}


def _optimizer(model: nn.Module, config: PretrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)


def load_pretrain_checkpoint(path: Path) -> dict[str, Any]:
    """Read a pre-training checkpoint (weights_only), or a CompressorError saying why it is not one."""
    state = load_torch_file(path, "pre-training checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CompressorError(f"{path} is not a SupCon pre-training checkpoint (written by `supcon pretrain`)")
    if state.get("version") != VERSION:
        raise CompressorError(f"{path} has pre-training checkpoint version {state.get('version')}; "
                              f"this release reads version {VERSION}")
    return state


def build_pretrained(state: dict[str, Any]) -> SupConModel:
    """The SupConModel stored in a pre-training checkpoint."""
    config = PretrainConfig.from_dict(state["config"])
    model = SupConModel(config.arch, state["dataset"]["channels"], config.projection_dim)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CompressorError(f"pre-training checkpoint does not match {config.arch}: {exc}") from exc
    return model.eval()


def pretrain(dataset: Dataset, config: PretrainConfig, checkpoint: Path, *, resume: bool = True,
             world: World | None = None, show_progress: bool = True,
             console: Console | None = None) -> dict[str, Any]:
    """Pre-train on `dataset.train`, saving `checkpoint` after every epoch; resumes from it when it exists."""
    world = world or World()
    console = console or Console(stderr=True)
    input_size = input_size_for(config.arch, dataset.info.native_size, config.input_size)
    if config.batch_size % world.size:
        raise CompressorError(f"batch size {config.batch_size} must be divisible by the {world.size} processes")
    local_batch = config.batch_size // world.size
    torch.manual_seed(config.seed)
    model = SupConModel(config.arch, dataset.info.channels, config.projection_dim).to(world.device)
    optimizer = _optimizer(model, config)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if resume and checkpoint.exists():
        state = load_pretrain_checkpoint(checkpoint)
        _check_resumable(state, config, dataset.info, checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start_epoch = list(state["history"]), int(state["epoch"])
        if world.is_main:
            console.print(f"resuming {checkpoint} after epoch {start_epoch}/{config.epochs}")
    trained: nn.Module = DistributedDataParallel(model) if world.size > 1 else model
    sampler = DistributedSampler(range(len(dataset.train)), num_replicas=world.size, rank=world.rank,
                                 shuffle=True, seed=config.seed, drop_last=True)
    per_epoch = len(sampler) // local_batch
    if per_epoch < 1:
        raise CompressorError(f"the training split has {len(dataset.train)} images, fewer than one batch of "
                              f"{config.batch_size}; lower --batch-size")
    total = per_epoch * config.epochs
    warmup = min(round(per_epoch * config.warmup_epochs), total // 2)
    log_every = 0 if console.is_terminal else max(1, per_epoch // 10)
    views = ViewMaker(dataset.info, input_size, config.views)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not (show_progress and world.is_main), console=console) as progress:
        task = progress.add_task(f"supcon {config.arch}", total=total, completed=start_epoch * per_epoch, info="")
        for epoch in range(start_epoch, config.epochs):
            sampler.set_epoch(epoch)
            torch.manual_seed(config.seed * 1000 + epoch * world.size + world.rank)
            indices = list(sampler)[:per_epoch * local_batch]
            trained.train()
            started, running = time.perf_counter(), 0.0
            batches = dataset.train.subset(indices).batches(input_size, local_batch)
            for i, (x, y) in enumerate(batches):
                step = epoch * per_epoch + i
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step, total, warmup, config.lr)
                try:
                    loss = _step(trained, optimizer, views, x, y, config, world)
                except Diverged as exc:
                    raise _diverged(f"epoch {epoch + 1}, step {i + 1}/{per_epoch} ({exc})", checkpoint, epoch,
                                    config) from None
                running = loss if i == 0 else 0.95 * running + 0.05 * loss
                progress.update(task, advance=1, info=f"epoch {epoch + 1}/{config.epochs} loss {running:.3f}")
                if log_every and world.is_main and (i + 1) % log_every == 0:
                    console.print(f"epoch {epoch + 1} step {i + 1}/{per_epoch}: loss {running:.4f}, "
                                  f"{time.perf_counter() - started:.0f} s")
            record = {"epoch": epoch + 1, "loss": round(running, 4), "steps": per_epoch,
                      "seconds": round(time.perf_counter() - started, 2), "lr_end": optimizer.param_groups[0]["lr"]}
            history.append(record)
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise _diverged(f"the end of epoch {epoch + 1} (non-finite weights)", checkpoint, epoch, config)
            if world.is_main:
                _save(checkpoint, model, optimizer, config, dataset.info, input_size, epoch + 1, history, world)
                console.print(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.4f}, "
                              f"{record['seconds']:.0f} s, saved {checkpoint}")
            if world.size > 1:
                dist.barrier()
    model.eval()
    return {"epochs": config.epochs, "steps_per_epoch": per_epoch, "input_size": input_size,
            "seconds": round(sum(r["seconds"] for r in history), 2), "history": history, **config.to_dict()}


class Diverged(RuntimeFailure):
    """The loss or the weights stopped being finite; the message says where and which checkpoint is kept."""


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, views: ViewMaker, x: torch.Tensor,
          y: torch.Tensor, config: PretrainConfig, world: World) -> float:
    """One optimizer step on a local batch; returns the global loss (the mean over ranks)."""
    stacked = views(x)
    batch, n_views = stacked.shape[:2]
    embeddings = model(stacked.transpose(0, 1).flatten(0, 1).to(world.device))
    features = embeddings.view(n_views, batch, -1).transpose(0, 1)
    labels = y.to(world.device) if config.supervised else None
    loss = distributed_supcon_loss(features, labels, temperature=config.temperature)
    if not torch.isfinite(loss):
        raise Diverged(f"loss {loss.item()}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    value = loss.detach()
    if world.size > 1:
        dist.all_reduce(value)
        value /= world.size
    return float(value)


def _diverged(where: str, checkpoint: Path, epochs_done: int, config: PretrainConfig) -> Diverged:
    """The one-line error for a run that stopped being finite, naming the checkpoint that stays valid."""
    kept = (f"{checkpoint} still holds epoch {epochs_done} and resumes from there" if epochs_done
            else f"no epoch finished, so nothing was written to {checkpoint}")
    return Diverged(f"pre-training diverged at {where}; {kept}; lower --lr (now {config.lr})")


def _check_resumable(state: dict[str, Any], config: PretrainConfig, info: DatasetInfo, path: Path) -> None:
    saved = PretrainConfig.from_dict(state["config"])
    if state["dataset"]["name"] != info.name:
        raise CompressorError(f"{path} was pre-trained on {state['dataset']['name']}, not {info.name}; "
                              "use another --output or --no-resume")
    if saved != PretrainConfig.from_dict({**config.to_dict(), "epochs": saved.epochs}):
        raise CompressorError(f"{path} was written with other settings ({saved}); only --epochs may change "
                              "on resume; use another --output or --no-resume")


def _save(path: Path, model: SupConModel, optimizer: torch.optim.Optimizer, config: PretrainConfig,
          info: DatasetInfo, input_size: int, epoch: int, history: list[dict[str, Any]], world: World) -> None:
    state = {"format": FORMAT, "version": VERSION, "config": config.to_dict(), "dataset": dataset_facts(info),
             "input_size": input_size, "epoch": epoch, "world_size": world.size,
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": optimizer.state_dict(), "history": history}
    save_torch_atomic(state, path)
