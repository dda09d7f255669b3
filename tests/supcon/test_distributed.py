"""Two CPU processes (gloo) with DDP give the same SupCon loss and gradients as one process on the global batch."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from supcon.distributed import distributed_supcon_loss
from supcon.loss import supcon_loss

WORLD = 2


def _problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A tiny embedding network and a global batch of 2-view inputs [8, 2, 6] with labels."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4)).double()
    inputs = torch.randn(8, 2, 6, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 2, 1, 1, 3, 0])  # label 2 and 3 appear once: their anchors need the other view
    return model, inputs, labels


def _worker(rank: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        for supervised in (True, False):  # one process group for both: spawning the 2 processes costs the most
            model, inputs, labels = _problem()
            ddp = DistributedDataParallel(model)
            share = len(inputs) // WORLD
            local = slice(rank * share, (rank + 1) * share)
            features = ddp(inputs[local])
            loss = distributed_supcon_loss(features, labels[local] if supervised else None, temperature=0.3)
            loss.backward()
            value = loss.detach().clone()
            dist.all_reduce(value)
            results[supervised, rank] = (float(value) / WORLD, [p.grad.clone() for p in model.parameters()])
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_results() -> dict:
    """(supervised, rank) -> (that rank's all-reduced loss / WORLD, its gradients), from one spawn of WORLD ranks."""
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(_free_port(), results), nprocs=WORLD, join=True)
        return dict(results)


@pytest.mark.parametrize("supervised", [True, False])
def test_two_processes_match_one_process(supervised, two_process_results):
    model, inputs, labels = _problem()
    expected = supcon_loss(model(inputs), labels if supervised else None, temperature=0.3)
    expected.backward()
    for rank in range(WORLD):
        loss, grads = two_process_results[supervised, rank]
        assert loss == pytest.approx(expected.item(), abs=1e-10)
        for grad, param in zip(grads, model.parameters()):
            torch.testing.assert_close(grad, param.grad, rtol=1e-9, atol=1e-12)


def test_single_process_falls_back_to_plain_loss():
    features = torch.randn(6, 2, 4, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    assert distributed_supcon_loss(features, labels).item() == pytest.approx(supcon_loss(features, labels).item())


def test_pretraining_under_torchrun_with_two_processes(tmp_path):
    """`torchrun -m supcon pretrain` on 2 CPU processes: one checkpoint, written by rank 0, records the world."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "supcon", "pretrain",
               "--arch", "resnet18", "--epochs", "1", "--batch-size", "128", "-o", str(tmp_path / "pre.pt"), "-q",
               "--cache-dir", str(tmp_path / "cache")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(tmp_path / "pre.pt", weights_only=True)
    assert state["world_size"] == 2 and state["epoch"] == 1
    assert state["history"][0]["steps"] == (1293 // 2) // 64  # each rank: its half of the data, 64 per step
    assert result.stdout.count("pre-trained resnet18") == 1  # only rank 0 reports
