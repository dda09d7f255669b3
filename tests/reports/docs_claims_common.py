"""Reading committed report files, and writing figures the way README.md and docs/*.md write them."""

from __future__ import annotations

from pathlib import Path

from test_committed_reports import Load, loader

from compressor.report.numbers import WORDS as NUMBER_WORDS
from compressor.report.numbers import megabytes, percent, signed, the_one


def files(report: Path) -> Load:
    """A report-relative name -> its parsed JSON, or its text for any other file (logs, READMEs, *.txt)."""
    json_load = loader(report)
    return lambda name: json_load(name) if name.endswith(".json") else (report / name).read_text()


_pct, _mb, _signed, _one = percent, megabytes, signed, the_one  # the names the claim modules use
WORDS = {count: word for count, word in NUMBER_WORDS.items() if count}
