"""Every strategy on the architecture families people deploy: each pair runs (the model still answers with the right
shape; int8 exports, quantizes and runs only integer conv and matmul kernels under ONNX Runtime), or is refused
before any work with one line naming what to use instead. `EXPECTED` is the table on docs/strategies.md
(#strategies-on-other-architectures), and a test checks that the page shows it. Small inputs and calibration sets
keep it fast; the slow marks cover the costly pairs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from compressor.data import DatasetInfo, TensorSplit
from compressor.errors import CompressorError
from compressor.measure.export import export_onnx, quantize_onnx_int8
from compressor.measure.int8_kernels import int8_kernel_report
from compressor.measure.latency import onnxruntime_session
from compressor.models.zoo import build_model
from compressor.strategies.registry import StrategyContext, build_strategy

ARCHS = {  # architecture: input size (timm's ViT keeps its 224 px position grid unless built for another size)
    "torchvision:mobilenet_v3_small": 32, "torchvision:mobilenet_v3_large": 32, "torchvision:efficientnet_b0": 32,
    "torchvision:regnet_y_400mf": 32, "timm:convnext_atto": 32, "timm:vit_tiny_patch16_224": 224,
    "timm:vit_tiny_patch16_224:img_size=32:patch_size=4": 32,
}
STRATEGIES = ("l1", "layer-sensitive", "channels", "blocks", "nm", "int8", "obd")
EXPECTED = {(arch, strategy): "runs" for arch in ARCHS for strategy in STRATEGIES}  # any refusal: its message
FAST = {"torchvision:mobilenet_v3_small", "timm:convnext_atto"}  # the default run; `make test-slow` runs all
PARAMS = {"l1": {"amount": 0.5}, "channels": {"amount": 0.3}, "blocks": {"amount": 0.3}, "obd": {"amount": 0.5},
          "nm": {}, "int8": {}, "layer-sensitive": {"amount": 0.5, "ratios": "0.5,0.9", "calib_samples": 32,
                                                    "judge_samples": 32}}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def _pairs() -> list:
    return [pytest.param(arch, strategy, marks=() if arch in FAST and strategy != "layer-sensitive"
                         else pytest.mark.slow, id=f"{arch}-{strategy}")
            for arch in ARCHS for strategy in STRATEGIES]


@pytest.mark.parametrize("arch, strategy", _pairs())
def test_a_strategy_runs_on_the_architecture_or_is_refused_in_one_line(arch: str, strategy: str,
                                                                       tmp_path: Path) -> None:
    if arch.startswith("timm:"):
        pytest.importorskip("timm")
    size = ARCHS[arch]
    torch.manual_seed(0)
    info = DatasetInfo("random", tuple(str(i) for i in range(10)), 3, size, (0.5,) * 3, (0.25,) * 3)
    split = TensorSplit(info, torch.randint(0, 255, (32, 3, size, size), dtype=torch.uint8), torch.arange(32) % 10)
    model = build_model(arch, 10, 3).eval()
    try:
        step = build_strategy(strategy, PARAMS[strategy])
        step.check(model)
        result = step.apply(model, StrategyContext(split, split, size)).model.eval()
    except CompressorError as exc:
        assert EXPECTED[arch, strategy] != "runs" and EXPECTED[arch, strategy] in str(exc), str(exc)
        assert "\n" not in str(exc)
        return
    assert EXPECTED[arch, strategy] == "runs"
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert result(x).shape == (2, 10)
    if strategy == "int8":
        export_onnx(result, tmp_path / "model.onnx", 3, size)
        calibration = [np.random.default_rng(i).random((1, 3, size, size), dtype=np.float32) for i in range(4)]
        quantize_onnx_int8(tmp_path / "model.onnx", tmp_path / "int8.onnx", calibration)
        out = onnxruntime_session(tmp_path / "int8.onnx", 1).run(None, {"input": calibration[0]})[0]
        assert out.shape == (1, 10)
        kernels = int8_kernel_report(tmp_path / "int8.onnx", (1, 3, size, size), profile_runs=1)
        assert kernels["runs_int8"], f"a conv or matmul left in float: {kernels['float_compute_ops']}"


def test_the_strategies_page_shows_the_tested_table() -> None:
    text = DOCS.read_text()
    start = text.index("| architecture | " + " | ".join(STRATEGIES) + " |")
    rows = [line for line in text[start:].splitlines()[2:] if line.startswith("| `")]
    shown = {re.search(r"`([^`]+)`", row)[1]: [cell.strip() for cell in row.split("|")[2:-1]] for row in rows}
    assert shown == {arch: [EXPECTED[arch, s] for s in STRATEGIES] for arch in ARCHS}
