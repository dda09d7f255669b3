"""Distributed SupCon: anchors stay on their rank, negatives and positives span the global batch.

Launched by `torchrun`, every rank holds an equal share of the global batch. Embeddings are gathered with
`torch.distributed.nn.functional.all_gather`, whose backward sends each rank the gradient of every rank's loss with
respect to its rows. Each rank's loss is scaled so that DistributedDataParallel's gradient averaging yields
exactly the gradient of the single-process loss on the global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn

from compressor.errors import CompressorError
from supcon.loss import anchor_losses, flatten_views, supcon_loss


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank, world size, and the device it computes on."""

    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Whether this rank writes checkpoints and draws progress."""
        return self.rank == 0


def setup_world(device: str | None = None) -> World:
    """Join the process group when started by torchrun (gloo on CPU, NCCL on GPU); a one-process world otherwise."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CompressorError(f"--device {device}: CUDA is not available here; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise CompressorError(f"--device must be cpu or cuda[:N]; got {device!r}")
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World(device=torch.device(device))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    rank = dist.get_rank()
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return World(rank, dist.get_world_size(), torch.device(device))


def distributed_supcon_loss(features: torch.Tensor, labels: torch.Tensor | None = None, *,
                            temperature: float = 0.1, base_temperature: float | None = None) -> torch.Tensor:
    """SupCon loss of this rank's [b, V, D] features contrasted against every rank's (falls back to `supcon_loss`).

    Every rank must pass the same b. The value returned is world_size x (this rank's share of the global mean), so
    the mean over ranks equals the global loss and DDP's averaged gradients equal its gradient. Without labels,
    sample ids are made globally unique (SimCLR).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return supcon_loss(features, labels, temperature=temperature, base_temperature=base_temperature)
    rank, world = dist.get_rank(), dist.get_world_size()
    batch = features.shape[0]
    if labels is None:
        labels = torch.arange(batch, device=features.device) + rank * batch
    flat, flat_labels = flatten_views(features, labels)
    contrast = torch.cat(dist_fn.all_gather(flat))
    gathered_labels = [torch.empty_like(flat_labels) for _ in range(world)]
    dist.all_gather(gathered_labels, flat_labels)
    self_index = torch.arange(len(flat), device=flat.device) + rank * len(flat)
    losses, valid = anchor_losses(flat, flat_labels, contrast, torch.cat(gathered_labels), self_index, temperature)
    count = valid.sum().to(torch.float64)
    dist.all_reduce(count)
    scale = temperature / (base_temperature or temperature)
    if count.item() == 0:
        return flat.sum() * 0.0
    return scale * world * losses[valid].sum() / count.to(losses.dtype)
