"""Claims from reports/resnet18-fashion-mnist-strategies/ and reports/densenet201-supcon-fashion-mnist/, and the helpers
shared by the sweep reports (rows, provenance, OpenAImer score files)."""

from __future__ import annotations

import re
from typing import Any

from docs_claims_common import _one, _pct, _two_modes
from test_committed_reports import Load

STRATEGIES_REPORT = "resnet18-fashion-mnist-strategies"
UNSTRUCTURED = ("l1", "layer-sensitive", "nm", "obd", "woodfisher", "fishleg")  # strategies that keep the dense graph


def _rows(load: Load) -> list[dict[str, Any]]:
    return load("results.json")["rows"]


def _row(load: Load, pipeline: str, finetune_epochs: float, amount: str | None = None) -> dict[str, Any]:
    """The run of `pipeline` (at `pipeline.amount=AMOUNT` when given) after `finetune_epochs` of fine-tuning."""
    return _one([r for r in _rows(load) if r["pipeline"] == pipeline and r["finetune_epochs"] == finetune_epochs
                 and (amount is None or f"{pipeline}.amount={amount}" in r["params"].split())],
                f"{pipeline} run at {amount} after {finetune_epochs} epochs")


def _baseline(load: Load, key: str = "baseline_accuracy") -> Any:
    return _one(sorted({r[key] for r in _rows(load)}), f"{key} over the runs")


def _ratio(row: dict[str, Any]) -> float:
    """The deployed latency against the run's own interleaved baseline timing."""
    return row["deployed_latency_ms"] / row["baseline_deployed_latency_ms"]


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


def _dn_recovery(load: Load) -> str:
    channels, blocks = _row(load, "channels", 0.25, "0.5"), _row(load, "blocks", 0.25, "0.5")
    return (f"had left them at {_pct(channels['accuracy'])} % and {_pct(blocks['accuracy'])} % of "
            f"{_pct(_baseline(load))} %")


def _dn_unstructured_ratios(load: Load) -> str:
    """Unstructured cells run the dense graph: their ratio to the baseline timed beside them, over every cell."""
    ratios = [_ratio(r) for r in _rows(load) if r["pipeline"] in UNSTRUCTURED]
    return f"the unstructured cells' ratios stay within x{min(ratios):.2f}-{max(ratios):.2f}"


def _process_modes(load: Load) -> str:
    """The per-process medians of scripts/ort_process_modes.py: two modes with 2 threads, their range with 1."""
    report = load("ort-process-modes.json")
    medians = report["medians_ms"]
    fast, slow = _two_modes(medians["2"])
    env = report["environment"]
    return (f"on the {env['cpu_count']}-core {env['cpu']}, {len(medians['2'])} fresh processes timing one dense "
            f"{report['arch']} ONNX file ({report['in_channels']} channel, {report['input_size']} px, batch "
            f"{report['batch_size']}) gave medians of {fast} processes and {slow} with 2 threads, and "
            f"{min(medians['1']):.2f}-{max(medians['1']):.2f} ms with 1 thread")


