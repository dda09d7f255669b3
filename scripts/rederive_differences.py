"""Re-derive the "Difference from" section, results.json's differences and difference.png of a committed
`compressor report` summary from the rows its results.json already holds (a changed noise rule needs no new run).

    .venv/bin/python scripts/rederive_differences.py reports/resnet18-fashion-mnist [...] --recovery-bn off

Rows written before the `bn_recalibrated` column existed get it from what those runs did: the recovery's BatchNorm
recalibration (`--recovery-bn`, what the sweep's run_args said) or, until this column came, the strategies that
recalibrated inside themselves by default (RECALIBRATED_INSIDE, unless their parameters said bn_recalibrate=false).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from compressor._util.fileio import write_atomic, write_json_atomic
from compressor.report.difference_plot import plot_differences
from compressor.report.summary import difference_section, reference_differences

RECALIBRATED_INSIDE = ("layer-sensitive", "obd", "woodfisher", "fishleg")
SECTION = re.compile(r"## Difference from .*?\n(?=## )", re.S)


def legacy_bn_recalibrated(row: dict, recovery_bn: bool) -> bool:
    """Whether a run recorded before the column recalibrated BatchNorm: by its recovery or inside a strategy."""
    inside = any(step in RECALIBRATED_INSIDE for step in row["pipeline"].split("+"))
    return recovery_bn or (inside and "bn_recalibrate=false" not in row["params"].lower())


def rederive(report: Path, recovery_bn: bool | None) -> None:
    """Rewrite report's differences from its rows: results.json, the README section and the figure."""
    results = json.loads((report / "results.json").read_text())
    for row in results["rows"]:
        if row.get("bn_recalibrated") is None:
            if recovery_bn is None:
                raise SystemExit(f"{report}: rows without bn_recalibrated; say what the recovery did (--recovery-bn)")
            row["bn_recalibrated"] = legacy_bn_recalibrated(row, recovery_bn)
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
    parser.add_argument("--recovery-bn", choices=("on", "off"),
                        help="for rows without bn_recalibrated: whether the runs' recovery recalibrated BatchNorm")
    args = parser.parse_args()
    for report in args.reports:
        rederive(report, None if args.recovery_bn is None else args.recovery_bn == "on")


if __name__ == "__main__":
    main()
