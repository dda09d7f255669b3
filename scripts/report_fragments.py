"""Write the docs fragments of committed `compressor report` directories, and embed them in README.md.

`compressor report` writes the fragments (runs.md, headline.md, accuracy.md, differences.md, openaimer.md) itself;
this re-renders them from each directory's results.json (and its `openaimer/` score files) for reports made before
it wrote them all, and is what tests/reports/test_fragments.py compares the committed fragments with. `--embed PAGE`
then refreshes every `<!-- fragment: PATH -->` block of PAGE (README.md: GitHub shows it without MkDocs snippets).

    usage: .venv/bin/python scripts/report_fragments.py reports/NAME [reports/NAME ...] [--embed README.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compressor._util.fileio import write_atomic
from compressor.report.fragments import embed_fragments, render_report_fragments
from compressor.report.schema import RESULTS_SCHEMA

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", type=Path, help="report directories holding a results.json")
    parser.add_argument("--embed", type=Path, action="append", default=[],
                        help="a page whose fragment blocks to refresh (paths in the blocks are from the repository)")
    args = parser.parse_args()
    for directory in args.reports:
        if json.loads((directory / "results.json").read_text()).get("schema") != RESULTS_SCHEMA:
            parser.error(f"{directory}/results.json is not a `compressor report` result ({RESULTS_SCHEMA})")
        for name, text in render_report_fragments(directory).items():
            print(write_atomic(directory / name, lambda tmp, text=text: tmp.write_text(text)))
    for page in args.embed:
        text = page.read_text()
        write_atomic(page, lambda tmp, text=text: tmp.write_text(embed_fragments(text, REPO)))
        print(page)


if __name__ == "__main__":
    main()
