"""Docs include report fragments (MkDocs snippets) instead of copying tables: every committed fragment re-renders
equal from its report's results.json, every include in the docs names one, and `compressor report` writes them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from compressor.report.fragments import RUNS_TABLE, render_fragments

REPO = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r'^--8<-- "([^"]+)"\s*$', re.M)
FRAGMENTS = sorted(REPO.glob(f"reports/*/{RUNS_TABLE}"))


def _includes() -> list[tuple[str, str]]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return [(page.name, target) for page in pages for target in INCLUDE.findall(page.read_text())]


def test_there_are_fragments_and_the_docs_include_them() -> None:
    assert FRAGMENTS and _includes()


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda path: path.parent.name)
def test_a_committed_fragment_re_renders_equal_from_its_results(fragment: Path) -> None:
    results = json.loads((fragment.parent / "results.json").read_text())
    assert fragment.read_text() == render_fragments(results)[fragment.name], \
        f"{fragment} is stale: rerun `python scripts/report_fragments.py {fragment.parent.relative_to(REPO)}`"
    assert fragment.read_text() in (fragment.parent / "README.md").read_text(), "the report's README shows the same"


@pytest.mark.parametrize("page, target", _includes())
def test_every_include_names_a_committed_fragment(page: str, target: str) -> None:
    assert (REPO / target) in FRAGMENTS, f"{page} includes {target}, which is not a committed report fragment"


def test_a_changed_row_changes_the_fragment() -> None:
    results = json.loads((FRAGMENTS[0].parent / "results.json").read_text())
    results["rows"][0]["accuracy"] += 0.01
    assert render_fragments(results)[RUNS_TABLE] != FRAGMENTS[0].read_text()
