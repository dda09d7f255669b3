"""Re-derive the "Difference from" section, results.json's differences and difference.png of a committed
`compressor report` summary from the rows its results.json already holds (a changed noise rule needs no new run).

    .venv/bin/python scripts/rederive_differences.py reports/resnet18-fashion-mnist [...]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from compressor.fileio import write_atomic, write_json_atomic
from compressor.report.difference_plot import plot_differences
from compressor.report.summary import difference_section, reference_differences

SECTION = re.compile(r"## Difference from .*?\n(?=## )", re.S)


def rederive(report: Path) -> None:
    """Rewrite report's differences from its rows: results.json, the README section and the figure."""
    results = json.loads((report / "results.json").read_text())
    reference = results["reference"]
    diffs = reference_differences(results["rows"], reference)
    results["differences"] = [d.as_dict() for d in diffs]
    readme = (report / "README.md").read_text()
    if not SECTION.search(readme):
        raise SystemExit(f"{report}/README.md has no '## Difference from' section followed by another section")
    text = SECTION.sub(lambda _: difference_section(diffs, reference) + "\n", readme, count=1)
    title = readme.splitlines()[0].removeprefix("# ")
    write_json_atomic(results, report / "results.json")
    plot_differences(diffs, reference, report / "difference.png", title)
    write_atomic(report / "README.md", lambda tmp: tmp.write_text(text))
    print(f"wrote {report / 'README.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="directories written by `compressor report --reference`")
    for report in parser.parse_args().reports:
        rederive(report)


if __name__ == "__main__":
    main()
