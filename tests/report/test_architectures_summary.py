"""scripts/architectures_summary.py: one overview line per architecture from its `compressor report` summary."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script

summary = load_script("architectures_summary")


def _row(pipeline: str, seed: int, accuracy: float, ms: float, megabytes: float) -> dict:
    return {"pipeline": pipeline, "params": f"{pipeline.split('+')[0]}.amount=0.5" if "+" in pipeline else "",
            "seed": seed, "accuracy": accuracy, "baseline_accuracy": 0.90, "deployed_latency_ms": ms,
            "baseline_deployed_latency_ms": 4.0, "deployable_bytes": int(megabytes * 1e6),
            "baseline_deployable_bytes": 8_000_000, "arch": "torchvision:mobilenet_v3_small", "input_size": 32,
            "int8_kernel_share": 0.9 if pipeline == "int8" else 0.5 + 0.1 * seed}


def _results() -> dict:
    rows = [_row("int8", s, 0.895, 2.0, 2.0) for s in (0, 1)]
    rows += [_row("channels+int8", s, a, 1.0, 0.6) for s, a in ((0, 0.892), (1, 0.894))]  # within 1 point, ×4
    rows += [_row("blocks+int8", s, a, 0.5, 0.4) for s, a in ((0, 0.85), (1, 0.86))]  # faster, 4.5 points down
    return {"rows": rows, "differences": [
        {"pipeline": "channels+int8", "mean": -0.2, "verdict": "no difference", "pairs": 2},
        {"pipeline": "blocks+int8", "mean": -4.0, "verdict": "worse", "pairs": 2}]}


def test_the_best_recipe_is_the_fastest_within_a_point_of_dense_and_is_set_against_int8(tmp_path: Path) -> None:
    line = summary.architecture_line(_results())
    assert line["best"]["pipeline"] == "channels+int8" and line["near_dense"]  # blocks is faster but 4.5 points down
    assert line["best"]["speedup"] == 4.0 and line["int8"]["speedup"] == 2.0
    (tmp_path / "mobilenet").mkdir()
    (tmp_path / "mobilenet" / "results.json").write_text(json.dumps(_results()))
    text = summary.render_fragments(tmp_path)["overview.md"]
    assert ("| `torchvision:mobilenet_v3_small` | 32 | 90.00 | 89.50 ± 0.00 (2) | 2.00 | 90 % | channels+int8 "
            "(channels.amount=0.5) | 89.30 ± 0.14 (2) | 4.00 | 55 % | 0.60 (8.00) | -0.20 points, no difference "
            "(2 pairs) |") in text


def test_with_nothing_near_dense_the_most_accurate_recipe_is_shown_and_said_so() -> None:
    results = _results()
    results["rows"] = [r for r in results["rows"] if r["pipeline"] != "channels+int8"]
    line = summary.architecture_line(results)
    assert line["best"]["pipeline"] == "blocks+int8" and not line["near_dense"]
    assert "none within 1 point" in summary.overview([line])


def test_runs_without_a_recorded_int8_kernel_share_show_a_dash() -> None:
    results = _results()
    for row in results["rows"]:
        del row["int8_kernel_share"]
    line = summary.architecture_line(results)
    assert line["int8"]["int8_share"] is None
    assert "| 2.00 | - | channels+int8" in summary.overview([line])
