"""Reading committed report files, and writing figures the way README.md and docs/*.md write them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from test_committed_reports import Load, loader


def files(report: Path) -> Load:
    """A report-relative name -> its parsed JSON, or its text for any other file (logs, READMEs, *.txt)."""
    json_load = loader(report)
    return lambda name: json_load(name) if name.endswith(".json") else (report / name).read_text()


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}"


def _mb(size: float) -> str:
    return f"{size / 1e6:.2f}"


def _signed(value: float, digits: int = 2) -> str:
    """+0.49 / −0.19, with the minus sign the pages print (U+2212)."""
    return f"{value:+.{digits}f}".replace("-", "−")


def _one(found: Sequence[Any], what: str) -> Any:
    if len(found) != 1:
        raise ValueError(f"expected one {what}, found {len(found)}")
    return found[0]


WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def _two_modes(values: Sequence[float], digits: int = 2) -> tuple[str, str]:
    """("A-B ms in N", "C-D ms in M"): the values split at their widest gap, each side as its range and count."""
    ordered = sorted(values)
    split = max(range(1, len(ordered)), key=lambda i: ordered[i] - ordered[i - 1])
    low, high = ordered[:split], ordered[split:]
    return tuple(f"{side[0]:.{digits}f}-{side[-1]:.{digits}f} ms in {len(side)}" for side in (low, high))
