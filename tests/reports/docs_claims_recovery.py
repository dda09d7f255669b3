"""Claims from reports/recovery-fashion-mnist/ quoted outside docs/recovery.md (whose figures are fragments)."""

from __future__ import annotations

import math
from typing import Any

from docs_claims_common import WORDS, _one
from test_committed_reports import Load, markdown_tables


def _cells(load: Load) -> list[dict[str, Any]]:
    return [c for c in load("results.json")["cells"] if c["status"] == "done"]


def _cell(load: Load, mode: str, pipeline: str, amount: float, epochs: float = 2) -> dict[str, Any]:
    return _one([c for c in _cells(load) if c["mode"] == mode and c["pipeline"] == pipeline
                 and math.isclose(c["amount"], amount) and c["finetune_epochs"] == epochs],
                f"{mode} {pipeline} {amount} cell after {epochs} epochs")


def _speedup(cell: dict[str, Any]) -> float:
    return cell["baseline_deployed_latency_ms"] / cell["deployed_latency_ms"]


def _channels09_speedups(load: Load) -> list[float]:
    fast = sorted(_speedup(c) for c in _cells(load) if c["pipeline"] == "channels" and math.isclose(c["amount"], 0.9))
    if len(fast) != 2:
        raise ValueError(f"expected two channels-0.9 cells, found {len(fast)}")
    return fast


def _harness_spread(load: Load) -> str:
    low, high = _channels09_speedups(load)
    return f"model timed {low:.0f}× and {high:.0f}× faster than dense in two cells"


def _baselines(load: Load) -> list[dict[str, Any]]:
    return load("results.json")["baselines"]


def _targets_met(load: Load) -> str:
    table = _one([t for t in markdown_tables(load("README.md")) if t and "target" in t[0]], "targets table")
    return f"{WORDS[sum(row[''] == 'met' for row in table)].capitalize()} of issue 17's targets are met"


