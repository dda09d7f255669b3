"""Plots: drawn without pyplot, so importing or plotting never touches matplotlib's backend; written atomically."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compressor.errors import RuntimeFailure
from compressor.report.layer_plots import plot_sensitivity

SENSITIVITY = {"ratios": [0.25, 0.5], "drops": {"conv1": [0.01, 0.05], "fc": [0.0, 0.2]}}


def test_importing_compressor_and_plotting_leave_the_backend_alone(tmp_path: Path):
    script = textwrap.dedent("""
        import sys
        from pathlib import Path

        import compressor, compressor.pipeline, compressor.report, compressor.report.summary, compressor.sweep
        assert "matplotlib" not in sys.modules, "importing compressor imported matplotlib"
        from compressor.report.layer_plots import plot_sensitivity
        from compressor.report.tradeoff_plot import plot_tradeoffs

        out = Path(sys.argv[1])
        plot_sensitivity({"ratios": [0.5], "drops": {"conv": [0.1]}}, out / "s.png")
        row = {"pipeline": "l1", "params": "", "finetune_epochs": 0, "accuracy": 0.9, "deployable_bytes": 10**6,
               "deployed_latency_ms": 2.0, "baseline_accuracy": 0.95, "baseline_deployable_bytes": 4 * 10**6,
               "baseline_deployed_latency_ms": 3.0}
        plot_tradeoffs([row], out / "t.png", "t")
        assert "matplotlib.pyplot" not in sys.modules, "plotting went through pyplot"
        import matplotlib
        print(matplotlib.get_backend())
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "MPLBACKEND": "svg"}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "svg"
    for name in ("s.png", "t.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_a_failed_plot_leaves_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from matplotlib.figure import Figure

    path = plot_sensitivity(SENSITIVITY, tmp_path / "s.png")
    before = path.read_bytes()

    def half_written(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", half_written)
    with pytest.raises(RuntimeFailure):
        plot_sensitivity(SENSITIVITY, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["s.png"]
