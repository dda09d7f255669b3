"""SupCon loss forward + backward: this package vs pytorch-metric-learning's SupConLoss on the same embeddings.

Rows are `images x 2 views` 128-d embeddings with 10 classes; both losses see the same normalized rows.
"""

from __future__ import annotations

import pytest
import torch

from compressor.measure.latency import torch_threads
from supcon.loss import supcon_loss

FULL_ROUNDS, FULL_WARMUP = 30, 5


def _ours(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return supcon_loss(features, labels, temperature=0.1)


def _pml(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    from pytorch_metric_learning.losses import SupConLoss

    batch, views, dim = features.shape
    flat = torch.nn.functional.normalize(features, dim=-1).transpose(0, 1).reshape(views * batch, dim)
    return SupConLoss(temperature=0.1)(flat, labels.repeat(views))


@pytest.mark.parametrize("rows", [1024, 2048])
@pytest.mark.parametrize("implementation", ["supcon", "pytorch-metric-learning"])
def test_supcon_loss_speed(benchmark, bench_options, implementation: str, rows: int) -> None:  # noqa: ANN001
    if implementation == "pytorch-metric-learning":
        pytest.importorskip("pytorch_metric_learning")
    loss_fn = _ours if implementation == "supcon" else _pml
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(rows // 2, 2, 128, generator=generator, requires_grad=True)
    labels = torch.randint(0, 10, (rows // 2,), generator=generator)
    benchmark.group = f"supcon loss {rows} x 128 forward+backward"
    rounds, warmup = (1, 0) if bench_options.smoke else (FULL_ROUNDS, FULL_WARMUP)
    benchmark.extra_info.update({"rows": rows, "dim": 128, "threads": bench_options.threads})

    def call() -> float:
        features.grad = None
        loss = loss_fn(features, labels)
        loss.backward()
        return loss.item()

    with torch_threads(bench_options.threads):
        value = benchmark.pedantic(call, rounds=rounds, warmup_rounds=warmup, iterations=1)
    assert value == pytest.approx(_ours(features.detach(), labels).item(), rel=1e-4)
