"""Shared fixtures: tiny models, the digits dataset, and the CLIs run in this process."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

import pytest
import torch
from torch import nn

from compressor.data import Dataset, load_dataset


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
