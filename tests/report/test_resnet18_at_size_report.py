"""scripts/resnet18_at_size_report.py: paired verdicts against dense, per-process speed-ups, int8 alone beside."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script


def _latency(medians: list[float]) -> dict:
    return {"median_ms": sorted(medians)[len(medians) // 2], "process_medians_ms": medians,
            "process_spread": (max(medians) - min(medians)) / sorted(medians)[len(medians) // 2], "processes": 3,
            "load": {"under_load": False}}


def _run(strategy: str, seed: int, accuracy: float, dense: list[float], fp32: list[float],
         int8: list[float] | None, macs: int) -> dict:
    compressed_latency = {"onnxruntime": _latency(fp32)}
    if int8:
        compressed_latency["onnxruntime-int8"] = _latency(int8)
    return {"strategy": strategy, "command": f"compressor run -s {strategy} --seed {seed}",
            "model": {"seed": seed, "input_size": 112},
            "recovery": {"finetune_epochs": 0 if strategy == "int8" else 0.5, "bn_recalibrate": False},
            "environment": {"git_commit": "abc1234", "git_dirty": False, "cpu": "x86", "cpu_count": 2},
            "baseline": {"accuracy": 0.90, "samples": 10_000, "macs": 400, "latency": {"onnxruntime": _latency(dense)}},
            "compressed": {"accuracy": accuracy, "samples": 10_000, "macs": macs, "deploy_input_size": 112,
                           "metrics_from": "int8 ONNX model (ONNX Runtime)", "latency": compressed_latency}}


def test_report_pairs_seeds_and_states_int8_alone(tmp_path: Path) -> None:
    script = load_script("resnet18_at_size_report")
    runs = tmp_path / "runs"
    runs.mkdir()
    # the machine doubles its speed in the third process: per-process ratios stay 4 (int8) and 8 (pruned + int8)
    dense = [20.0, 20.0, 10.0]
    reports = [_run("int8", s, 0.899 + s / 10_000, dense, dense, [5.0, 5.0, 2.5], 400) for s in (0, 1)]
    reports += [_run("channels+int8", s, 0.80 + s / 1000, dense, [8.0, 8.0, 4.0], [2.5, 2.5, 1.25], 100)
                for s in (0, 1)]
    for i, report in enumerate(reports):
        (runs / f"r{i}.json").write_text(json.dumps(report))
    rows = [script.row(r) for r in script.load_runs(runs)]
    summary = {s["pipeline"]: s for s in script.summarize(rows)}
    assert summary["int8"]["speedup"]["onnxruntime-int8"] == 4.0
    assert summary["channels+int8"]["speedup"] == {"onnxruntime": 2.5, "onnxruntime-int8": 8.0}
    assert summary["channels+int8"]["verdict"] == "worse" and summary["int8"]["verdict"] == "no difference"
    assert summary["channels+int8"]["mac_reduction"] == 4.0 and summary["int8"]["seeds"] == [0, 1]
    text = script.render(rows, list(summary.values()), "scripts/resnet18-at-size.sh")
    line = next(row for row in text.splitlines() if row.startswith("| channels+int8 | 2 |"))
    assert line.rstrip().endswith("| ×8.00 | ×4.00 |"), line
    assert "abc1234" in text and "no timing ran under load" in text
