"""Write the docs fragments (runs.md, headline.md) of committed `compressor report` directories from their results.json.

`compressor report` writes them itself; this re-renders them for reports made before it did, and is what
tests/reports/test_fragments.py compares the committed fragments with.

    usage: .venv/bin/python scripts/report_fragments.py reports/NAME [reports/NAME ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compressor.report.fragments import write_fragments
from compressor.report.schema import RESULTS_SCHEMA


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="report directories holding a results.json")
    args = parser.parse_args()
    for directory in args.reports:
        results = json.loads((directory / "results.json").read_text())
        if results.get("schema") != RESULTS_SCHEMA:
            parser.error(f"{directory}/results.json is not a `compressor report` result ({RESULTS_SCHEMA})")
        for path in write_fragments(results, directory):
            print(path)


if __name__ == "__main__":
    main()
