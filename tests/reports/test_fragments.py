"""Docs include report fragments (MkDocs snippets) instead of copying tables: every committed fragment re-renders
equal from its report's results.json, every include in the docs names one, and `compressor report` writes them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from compressor.report.fragments import HEADLINE, RUNS_TABLE, headline, render_fragments

REPO = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r'^--8<-- "([^"]+)"\s*$', re.M)
FRAGMENTS = sorted([*REPO.glob(f"reports/*/{RUNS_TABLE}"), *REPO.glob(f"reports/*/{HEADLINE}")])


def _includes() -> list[tuple[str, str]]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return [(page.name, target) for page in pages for target in INCLUDE.findall(page.read_text())]


def test_there_are_fragments_and_the_docs_include_them() -> None:
    assert FRAGMENTS and _includes()


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_committed_fragment_re_renders_equal_from_its_results(fragment: Path) -> None:
    results = json.loads((fragment.parent / "results.json").read_text())
    assert fragment.read_text() == render_fragments(results)[fragment.name], \
        f"{fragment} is stale: rerun `python scripts/report_fragments.py {fragment.parent.relative_to(REPO)}`"
    if fragment.name == RUNS_TABLE:
        assert fragment.read_text() in (fragment.parent / "README.md").read_text(), "the README shows the same"


@pytest.mark.parametrize("page, target", _includes())
def test_every_include_names_a_committed_fragment(page: str, target: str) -> None:
    assert (REPO / target) in FRAGMENTS, f"{page} includes {target}, which is not a committed report fragment"


def test_a_changed_row_changes_the_fragment() -> None:
    results = json.loads((FRAGMENTS[0].parent / "results.json").read_text())
    results["rows"][0]["accuracy"] += 0.01
    assert render_fragments(results)[RUNS_TABLE] != FRAGMENTS[0].read_text()


def _row(pipeline: str, params: str, accuracy: float, megabytes: float, ms: float, **extra: object) -> dict:
    return {"pipeline": pipeline, "params": params, "finetune_epochs": 0, "seed": 0, "accuracy": accuracy,
            "baseline_accuracy": 0.92, "deployable_bytes": int(megabytes * 1e6), "baseline_deployable_bytes": 40e6,
            "deployed_latency_ms": ms, "baseline_deployed_latency_ms": 1.0, "arch": "resnet18",
            "dataset": "fashion-mnist", "input_size": 32, "git_commit": "abc1234",
            "machine": "Xeon (avx512f), 2 cores, torch threads 2", **extra}


def test_the_headline_names_the_smallest_and_the_fastest_run_near_dense_and_counts_the_verdicts() -> None:
    rows = [_row("l1", "l1.amount=0.5", 0.915, 20.0, 1.0), _row("channels", "channels.amount=0.5", 0.912, 10.0, 0.4),
            _row("blocks", "blocks.amount=0.9", 0.80, 2.0, 0.1, timed_under_load=True)]
    text = headline({"rows": rows, "reference": "l1", "differences": [
        {"verdict": "worse", "pairs": 3}, {"verdict": "no difference", "pairs": 3}]})
    assert text.startswith("3 runs of resnet18 on fashion-mnist at 32 px (dense 92.00 % test top-1), at commit "
                           "abc1234 on Xeon (avx512f), 2 cores; 1 timed under load.")
    assert ("the smallest file and the fastest model are the same run, channels (channels.amount=0.5): 10.00 MB "
            "deployable (dense 40.00 MB) and 0.40 ms, x0.40 of the dense model timed beside it, at 91.20 %.") in text, \
        "blocks is smaller and faster but 12 points below dense"
    assert "2 settings: 1 worse, 1 no difference; each verdict rests on 3 paired seed(s)" in text
    far = headline({"rows": [_row("blocks", "blocks.amount=0.9", 0.80, 2.0, 0.1)]})
    assert ("No run comes within 1 point of dense top-1; the most accurate is blocks (blocks.amount=0.9) at "
            "80.00 %") in far
