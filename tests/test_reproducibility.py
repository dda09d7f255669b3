"""Same seed, same command, same data: identical masks and metrics (latency aside) for l1, layer-sensitive, channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from compressor.measure import MeasureConfig
from compressor.measure.latency import TimingPlan
from compressor.models.checkpoint import Checkpoint, ModelSpec, load_checkpoint, save_checkpoint
from compressor.models.zoo import build_model
from compressor.pipeline import RunConfig, run
from compressor.strategies.steps import parse_steps

QUICK = MeasureConfig(backends=("torch",), compressions=(), rounds=1,
                      plan=TimingPlan(warmup_runs=1, warmup_seconds=0.0, min_runs=2, min_seconds=0.0))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, digits) -> Path:
    torch.manual_seed(0)
    info = digits.info
    spec = ModelSpec("resnet18", 10, 1, 16, "digits", info.classes, info.mean, info.std)
    path = tmp_path_factory.mktemp("repro") / "base.pt"
    save_checkpoint(Checkpoint(spec, build_model("resnet18", 10, 1)), path)
    return path


def _without_timing(value: Any) -> Any:
    """The report minus what legitimately differs between two runs: clocks, latency, file locations and the
    process's peak memory (a high-water mark, so the second run in one process reads at least the first's)."""
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items()
                if k not in ("latency", "latency_ms", "seconds", "created", "checkpoint", "file", "cache_file",
                              "environment", "plots", "resources")}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


# layer-sensitive scans each layer at two ratios, not the default five: the scan is the same code either way, and
# with five it took two thirds of this file's time
PARAMS = {"layer-sensitive": ["ratios=0.5,0.9"]}


@pytest.mark.parametrize("strategy, amount", [("l1", "0.6"), ("layer-sensitive", "0.5"), ("channels", "0.3")])
def test_same_seed_same_masks_and_metrics(strategy: str, amount: str, baseline: Path, tmp_path: Path) -> None:
    reports, models = [], []
    for attempt in ("a", "b"):
        # each attempt its own cache: both measure the layer-sensitive scan (a shared one would serve the second)
        config = RunConfig(steps=parse_steps([strategy], amount, PARAMS.get(strategy)), model=baseline, seed=3,
                           measure=QUICK, output=tmp_path / attempt / "report.json",
                           cache_dir=tmp_path / attempt / "cache", show_progress=False)
        result = run(config)
        reports.append(_without_timing(result.report))
        models.append(load_checkpoint(result.checkpoint_path).model.state_dict())
    assert reports[0] == reports[1]
    assert models[0].keys() == models[1].keys()
    for name, tensor in models[0].items():
        assert torch.equal(tensor, models[1][name]), name
    assert reports[0]["compressed"]["params_nonzero"] < reports[0]["baseline"]["params_nonzero"]
