"""Claims from reports/resnet18-fashion-mnist-strategies/, and the helpers shared by the sweep reports' claims."""

from __future__ import annotations

import re
from typing import Any

from docs_claims_common import _one, _pct
from test_committed_reports import Load

STRATEGIES_REPORT = "resnet18-fashion-mnist-strategies"


def _rows(load: Load) -> list[dict[str, Any]]:
    return load("results.json")["rows"]


def _baseline(load: Load, key: str = "baseline_accuracy") -> Any:
    return _one(sorted({r[key] for r in _rows(load)}), f"{key} over the runs")


def _epochs_of(checkpoint: str) -> str:
    return re.search(r"-e(\d+)-", checkpoint)[1]


def _script_minutes(load: Load) -> str:
    """The script's wall time, from the `/usr/bin/time -v` output kept in script.log."""
    lines = [line for line in load("script.log").splitlines() if "Elapsed (wall clock)" in line]
    elapsed = _one([line.split(": ")[-1] for line in lines], "elapsed line of script.log")
    minutes, seconds = elapsed.split(":")[-2:]
    return f"({round(int(minutes) + float(seconds) / 60)} minutes on this 2-core machine"


def _difference(load: Load) -> str:
    d = _one([d for d in load("results.json")["differences"]
              if d["pipeline"] == "layer-sensitive" and d["finetune_epochs"] == 1], "layer-sensitive difference")
    verdict = d["verdict"]
    return (f"layer-sensitive at {100 * d['amount']:g} % after one epoch is {d['mean']:+.2f} ± {d['se']:.2f} points "
            f"from {load('results.json')['reference']}, {verdict}")


def _strategies_baseline(load: Load) -> str:
    first = _rows(load)[0]
    return (f"same cached baseline ({_epochs_of(first['baseline_checkpoint'])} epochs, {_pct(_baseline(load))} % test "
            f"top-1), measured on the {first['samples']:,} test images at {first['input_size']} px")
