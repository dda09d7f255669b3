"""scripts/ort_process_modes.py: one median per fresh process and thread count, written with the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ort_process_modes.py"


def test_a_child_times_the_file_it_is_given_with_the_harness_session(tmp_path: Path):
    script = load_script("ort_process_modes")
    onnx_path = tmp_path / "model.onnx"
    script.export("resnet18", 1, 32, onnx_path)
    for config in ("1", "2-nospin", "2-pinned"):
        record = script.child(str(onnx_path), 1, 32, config, warmups=1, calls=3)
        assert 0 < record["median_ms"] < 10_000 and record["reference_ms"] > 0


def test_configs_are_a_thread_count_and_a_session_suffix():
    script = load_script("ort_process_modes")
    assert script.parse_config("2") == (2, True, False)
    assert script.parse_config("2-nospin") == (2, False, False) and script.parse_config("1-pinned") == (1, True, True)
    for bad in ("two", "0", "2-fast"):
        try:
            script.parse_config(bad)
        except SystemExit as exc:
            assert bad in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")


def test_each_fresh_process_gives_one_median(tmp_path: Path):
    out = tmp_path / "modes.json"
    result = subprocess.run([sys.executable, str(SCRIPT), "--arch", "resnet18", "--processes", "2", "--threads", "1",
                             "--warmups", "1", "--calls", "3", "-o", str(out)],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert list(report["medians_ms"]) == ["1"] and len(report["processes"]["1"]) == 2
    assert len(report["medians_ms"]["1"]) == 2 and all(m > 0 for m in report["medians_ms"]["1"])
    assert (report["arch"], report["in_channels"], report["input_size"], report["calls"]) == ("resnet18", 1, 32, 3)
    assert report["environment"]["cpu_count"] == os.cpu_count()
