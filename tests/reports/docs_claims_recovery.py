"""Claims from reports/recovery-fashion-mnist/ quoted outside docs/recovery.md (whose figures are fragments)."""

from __future__ import annotations

from typing import Any

from docs_claims_common import WORDS, _one
from test_committed_reports import Load, markdown_tables


def _cells(load: Load) -> list[dict[str, Any]]:
    return [c for c in load("results.json")["cells"] if c["status"] == "done"]


def _baselines(load: Load) -> list[dict[str, Any]]:
    return load("results.json")["baselines"]


def _targets_met(load: Load) -> str:
    table = _one([t for t in markdown_tables(load("README.md")) if t and "target" in t[0]], "targets table")
    return f"{WORDS[sum(row[''] == 'met' for row in table)].capitalize()} of issue 17's targets are met"


