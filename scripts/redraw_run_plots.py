"""Redraw the per-run figures of committed `compressor run` reports from their JSON alone (sensitivity heatmaps,
what each layer kept), with the current renderer, and record them in each report's `plots`. No model is loaded and
nothing is measured: only the figures and the `plots` entry change.

    usage: .venv/bin/python scripts/redraw_run_plots.py RUN.json [RUN.json ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compressor._util.fileio import write_json_atomic  # noqa: E402
from compressor.report.layer_plots import draw_run_plots  # noqa: E402
from compressor.report.schema import REPORT_SCHEMA  # noqa: E402


def redraw(path: Path) -> dict[str, str]:
    """Draw `path`'s figures beside it and write its `plots` entry; return that entry."""
    report = json.loads(path.read_text())
    if report.get("schema") != REPORT_SCHEMA:
        raise ValueError(f"{path} is not a `compressor run` report (schema {report.get('schema')!r})")
    report["plots"] = draw_run_plots(report, path)
    write_json_atomic(report, path)
    return report["plots"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    args = parser.parse_args()
    for path in args.reports:
        try:
            plots = redraw(path)
        except (OSError, ValueError) as exc:
            sys.exit(f"error: {exc}")
        print(f"{path}: {', '.join(plots.values()) or 'no figures'}")


if __name__ == "__main__":
    main()
