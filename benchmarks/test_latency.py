"""Dense vs L1-pruned ResNet18 and DenseNet201 under torch eager and ONNX Runtime, batch 1 and 8.

Each call is timed individually (pedantic mode, iterations=1), so p90/p99 come from the per-call samples.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.conftest import ARCHS, SMOKE, VARIANTS

THREADS = torch.get_num_threads()
ROUNDS, WARMUP = (1, 0) if SMOKE else (50, 10)


def _attach_percentiles(benchmark) -> None:  # noqa: ANN001 - pytest-benchmark fixture
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.data:
        data = np.asarray(stats.stats.data) * 1e3
        benchmark.extra_info.update({"p90_ms": float(np.percentile(data, 90)),
                                     "p99_ms": float(np.percentile(data, 99))})


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_latency(benchmark, bench_model, arch: str, variant: str, backend: str, batch: int) -> None:
    subject = bench_model(arch, variant)
    benchmark.group = f"{arch} {subject.input_size}px batch {batch}"
    benchmark.extra_info.update({**subject.extra_info, "backend": backend, "batch": batch, "threads": THREADS})
    x = torch.randn(batch, subject.in_channels, subject.input_size, subject.input_size)
    if backend == "torch":
        def call() -> object:
            with torch.inference_mode():
                return subject.model(x)
    else:
        session, feed = subject.session(THREADS), {"input": x.numpy()}

        def call() -> object:
            return session.run(None, feed)
    out = benchmark.pedantic(call, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    logits = out if backend == "torch" else torch.from_numpy(out[0])
    assert logits.shape == (batch, 10)
    _attach_percentiles(benchmark)
