"""Markdown fragments of a report for the docs to include (MkDocs snippets), so no table is copied by hand.

`compressor report` writes them beside README.md; `render_fragments(results)` renders them again from the report's
results.json alone, which is how the docs check knows a committed fragment still says what its rows say.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compressor._util.fileio import write_atomic
from compressor.report.summary import markdown_table

RUNS_TABLE = "runs.md"  # every run of the report: the README's run table


def render_fragments(results: Mapping[str, Any]) -> dict[str, str]:
    """The fragments of a report, by file name, from its results.json document."""
    return {RUNS_TABLE: markdown_table(results["rows"])}


def write_fragments(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write every fragment of the report into `out_dir` (atomically); returns their paths."""
    paths = []
    for name, text in render_fragments(results).items():
        paths.append(write_atomic(out_dir / name, lambda tmp, text=text: tmp.write_text(text)))
    return paths
