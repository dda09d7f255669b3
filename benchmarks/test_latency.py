"""Dense and compressed digits models under torch eager and ONNX Runtime, per input size and batch size.

Variants (benchmarks/conftest.py PIPELINES): dense, l1-0.5, channels-0.5, channels-0.7, blocks-0.5, int8 and the
blocks 0.5 -> l1 0.5 -> int8 chain; int8 and chain run under ONNX Runtime only (their torch rows are skipped).
Each call is timed individually (pedantic mode, iterations=1), so p90/p99 come from the per-call samples. Every
row also checks what the variant claims (shape, ONNX Runtime agreeing with torch, sparsity, fewer MACs, a smaller
int8 file), so the smoke run (`--bench-smoke --benchmark-disable`) fails when a variant stops being what it says.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.conftest import BenchModel, bench_options_of, ends_with_int8
from compressor.measure.latency import torch_threads

BACKENDS = ("torch", "onnxruntime")
FULL_ROUNDS, FULL_WARMUP = 50, 10


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.name != "test_forward_latency":
        return
    options = bench_options_of(metafunc.config)
    metafunc.parametrize("arch,size,variant,backend,batch", [
        pytest.param(arch, size, variant, backend, batch, id=f"{arch}-{size}px-{variant}-{backend}-bs{batch}")
        for arch in options.archs for size in options.sizes for variant in options.variants
        for backend in BACKENDS for batch in options.batches])


def _attach_percentiles(benchmark) -> None:  # noqa: ANN001 - pytest-benchmark fixture
    stats = getattr(benchmark, "stats", None)
    if stats is not None and stats.stats.data:
        data = np.asarray(stats.stats.data) * 1e3
        benchmark.extra_info.update({"p90_ms": float(np.percentile(data, 90)),
                                     "p99_ms": float(np.percentile(data, 99))})


def check_variant(subject: BenchModel, dense: BenchModel) -> None:
    """What each variant must be, compared with the dense model at the same size."""
    info, name = subject.extra_info, subject.variant.name
    steps = {step["strategy"] for step in subject.variant.steps}
    if not steps:
        assert info["sparsity"] < 0.01, f"the dense model has {info['sparsity']:.1%} zero weights"
    if "l1" in steps:
        assert info["sparsity"] >= 0.45, f"{name}: only {info['sparsity']:.1%} of the weights are zero"
    if steps & {"channels", "blocks"}:
        dense_macs = dense.extra_info["macs"]
        assert info["macs"] < dense_macs, f"{name}: {info['macs']} MACs, dense has {dense_macs}"
        assert info["params_total"] < dense.extra_info["params_total"], f"{name} has as many parameters as dense"
    if "int8" in steps:
        int8, fp32 = info["size_onnx-int8_bytes"], info["size_onnx_bytes"]
        assert int8 < 0.5 * fp32, f"{name}: the int8 ONNX file ({int8} B) is not under half the fp32 one ({fp32} B)"


def test_forward_latency(benchmark, bench_model, bench_options, arch: str, size: int, variant: str,  # noqa: ANN001
                         backend: str, batch: int) -> None:
    if backend == "torch" and ends_with_int8(variant):
        pytest.skip(f"{variant} deploys an int8 ONNX model: it exists under ONNX Runtime only")
    subject, dense = bench_model(arch, variant, size), bench_model(arch, "dense", size)
    threads = bench_options.threads
    rounds, warmup = (1, 0) if bench_options.smoke else (FULL_ROUNDS, FULL_WARMUP)
    benchmark.group = f"{arch} {size}px batch {batch}"
    benchmark.extra_info.update({**subject.extra_info, "backend": backend, "batch": batch, "threads": threads})
    check_variant(subject, dense)
    x = torch.randn(batch, subject.in_channels, size, size, generator=torch.Generator().manual_seed(0))
    if backend == "torch":
        def call() -> object:
            with torch.inference_mode():
                return subject.model(x)

        with torch_threads(threads):
            logits = benchmark.pedantic(call, rounds=rounds, warmup_rounds=warmup, iterations=1).numpy()
    else:
        session, feed = subject.session(threads), {"input": x.numpy()}

        def call() -> object:
            return session.run(None, feed)

        logits = benchmark.pedantic(call, rounds=rounds, warmup_rounds=warmup, iterations=1)[0]
        if not ends_with_int8(variant):
            with torch.inference_mode():
                expected = subject.model(x).numpy()
            scale = max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(logits, expected, rtol=1e-3, atol=1e-3 * scale,
                                       err_msg=f"{variant}: ONNX Runtime disagrees with torch")
    assert logits.shape == (batch, subject.variant.num_classes)
    assert np.isfinite(logits).all()
    _attach_percentiles(benchmark)
