"""Claims from reports/benchmarks/ that pages quote outside the included fragments (scripts/measurement_fragments.py
renders the rest)."""

from __future__ import annotations

from typing import Any

from conftest import load_script
from test_committed_reports import Load

fragments = load_script("measurement_fragments")
BENCH_FILE = fragments.BENCH_FILE


def _medians(load: Load) -> dict[tuple[str, int, str, int], float]:
    """Median ms of every latency benchmark of the committed `make bench` run, by (variant, px, backend, batch)."""
    return fragments.medians_of(load(BENCH_FILE))


def _bench_steps(load: Load, strategy: str) -> list[dict[str, Any]]:
    """Every `strategy` step of the variants of the committed `make bench` run."""
    return [s for b in load(BENCH_FILE)["benchmarks"] for s in b["extra_info"].get("steps", [])
            if s["strategy"] == strategy]
