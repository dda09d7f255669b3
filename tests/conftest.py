"""Shared fixtures: tiny models, the digits dataset, and the CLIs run in this process."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import io
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from compressor.data import Dataset, load_dataset
from compressor.report.uncertainty import binomial_se


class TinyNet(nn.Module):
    """A small conv net with a stem conv, BatchNorm, two more convs and a classifier."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.hidden = nn.Linear(64, 32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.conv1(x)))))
        x = nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        return self.fc(torch.relu(self.hidden(x)))


@pytest.fixture
def tiny_net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits")


def within_noise(first: float, second: float, samples: int, z: float = 3.0) -> bool:
    """Two accuracies on `samples` test images differ by at most z combined binomial standard errors.

    For tests that compare two trained or quantized models: the bound comes from the test set's noise at the
    measured accuracies, not from what one CPU produced (treating the two as independent overstates the noise of
    a comparison on the same images, so the check errs towards passing a real, small difference)."""
    return abs(first - second) <= z * math.hypot(binomial_se(first, samples), binomial_se(second, samples))


def run_cli(program: str, args: list[str]) -> tuple[int, str, str]:
    """Run `compressor` or `supcon` in this process; returns the exit code, stdout and stderr.

    Both programs print through the consoles of `compressor.cli.options`; stdout is not a terminal here.
    """
    from compressor.cli import main as compressor_main
    from compressor.cli import options
    from supcon.cli import main as supcon_main

    stdout, stderr = io.StringIO(), io.StringIO()
    files = options.out._file, options.err._file  # None: rich follows sys.stdout/sys.stderr (and pytest's capture)
    widths = options.out.width, options.err.width
    options.out.file, options.err.file = stdout, stderr
    options.out.width = options.err.width = 400
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            (compressor_main if program == "compressor" else supcon_main)(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        options.out._file, options.err._file = files
        options.out.width, options.err.width = widths
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def invoke() -> Callable[[str, list[str]], tuple[int, str, str]]:
    """`invoke("compressor", [...])` -> (exit code, stdout, stderr), in this process."""
    return run_cli


# Latency with 2 warm-up calls and 20 timed calls, no minimum durations: the default plan (0.5 s warm-up, then at
# least 20 calls and 1 s per model and backend) costs 1.5 s per timed model, dozens of seconds in a test that times
# a grid. 20 calls keep a test's `runs >= 20` meaning what it means under the default plan.
QUICK_PLAN_RUNS = 20


@contextlib.contextmanager
def quick_timing_plan() -> Iterator[None]:
    """`compressor run`, `compressor bench` and `compressor.measure()` called in this process time with the quick
    plan.

    For tests that check what is timed (backends, sizes, batches, the report's shape), never how fast: the CLI and
    the API still build their MeasureConfig from their options; only the timing plan is replaced. Commands run in
    a subprocess keep the default plan (tests/test_cli.py's first run covers it).
    """
    from compressor import api
    from compressor.cli import compress
    from compressor.measure import MeasureConfig
    from compressor.measure.latency import TimingPlan

    quick = TimingPlan(warmup_runs=2, warmup_seconds=0.0, min_runs=QUICK_PLAN_RUNS, min_seconds=0.0)
    real = compress._measure_config

    def measure_config(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the real one's signature
        return dataclasses.replace(real(*args, **kwargs), plan=quick)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compress, "_measure_config", measure_config)
        patch.setattr(api, "MeasureConfig", functools.partial(MeasureConfig, plan=quick))
        yield


@pytest.fixture
def quick_timing() -> Iterator[None]:
    """In-process CLI runs of this test time with the quick plan (see `quick_timing_plan`)."""
    with quick_timing_plan():
        yield


def load_script(name: str) -> ModuleType:
    """scripts/NAME.py as a module (the scripts are not a package), loaded once."""
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
