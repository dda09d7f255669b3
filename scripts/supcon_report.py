"""Write reports/supcon/README.md, results.json and the fragments the docs include, from the two `supcon evaluate
--out` results.

Called by scripts/supcon-fashion-mnist.sh after both classifiers are trained and evaluated:

    .venv/bin/python scripts/supcon_report.py reports/supcon --command "scripts/supcon-fashion-mnist.sh 2"
    .venv/bin/python scripts/supcon_report.py reports/supcon --fragments   # only the fragments, from results.json

The fragments (`render_fragments`): `table.md`, the comparison table of docs/supcon.md; `headline.md`, the result in
one sentence (README.md embeds it); `training.md`, the training budget, times and the SupCon epochs' seconds from
`pretrain.log`. tests/reports/test_script_fragments.py checks that the committed ones still render from the files.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from compressor._util.environment import environment
from compressor._util.fileio import write_atomic, write_json_atomic

TARGET_F1 = 0.93
METHODS = {"supcon": "SupCon + linear", "cross-entropy": "cross-entropy"}


def method_row(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """One comparison row: budget, time and test metrics, read from the classifier's own history."""
    record = metrics["history"][-1]
    if record.get("step") == "supcon-linear":
        config = record["pretrain_config"]
        epochs, views = record["pretrain_epochs"], config["views"]["views"]
        train_seconds = record["pretrain_seconds"]
        extra_seconds = record["feature_seconds"] + record["fit_seconds"]
        budget = f"{epochs} epochs x {views} views + linear {record['epochs']} epochs on cached features"
        passes = epochs * views
    else:
        train_seconds, extra_seconds = record["seconds"], 0.0
        budget = f"{record['epochs']} epochs"
        passes = record["epochs"]
    return {"method": METHODS[name], "budget": budget, "image_passes_per_train_image": passes,
            "train_seconds": round(train_seconds, 1), "linear_seconds": round(extra_seconds, 1),
            **{key: metrics[key] for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro",
                                             "f1_weighted", "samples")},
            "per_class_f1": {cls: row["f1-score"] for cls, row in metrics["per_class"].items()}}


def markdown(rows: list[dict[str, Any]], command: str, env: dict[str, Any]) -> str:
    """The report's README: comparison table, per-class F1, figures, target, command and environment."""
    lines = ["# DenseNet201 on Fashion-MNIST: SupCon + linear vs cross-entropy on the same budget", "",
             f"Regenerate: `{command}` (from the repository root; `make install` first).", "",
             f"Test split: {rows[0]['samples']:,} images. The budget is counted in image passes through the "
             "encoder: SupCon sees every training image once per view per epoch, so cross-entropy gets "
             "epochs x views epochs. Times are wall-clock on the machine below.", "",
             "| method | budget | train time | accuracy | macro precision | macro recall | macro F1 | weighted F1 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        time_text = f"{row['train_seconds'] / 60:.1f} min"
        if row["linear_seconds"]:
            time_text += f" + {row['linear_seconds']:.0f} s linear"
        lines.append(f"| {row['method']} | {row['budget']} | {time_text} | {row['accuracy']:.4f} | "
                     f"{row['precision_macro']:.4f} | {row['recall_macro']:.4f} | {row['f1_macro']:.4f} | "
                     f"{row['f1_weighted']:.4f} |")
    best = max(rows, key=lambda r: r["f1_macro"])
    verdict = "reached" if best["f1_macro"] >= TARGET_F1 else "not reached"
    lines += ["", f"Target macro F1 >= {TARGET_F1}: {verdict} (best: {best['method']}, {best['f1_macro']:.4f}).", "",
              "## Per-class F1", "", "| class | " + " | ".join(r["method"] for r in rows) + " |",
              "|---|" + "---:|" * len(rows)]
    for cls in rows[0]["per_class_f1"]:
        lines.append(f"| {cls} | " + " | ".join(f"{r['per_class_f1'][cls]:.4f}" for r in rows) + " |")
    lines += ["", "## Figures", "",
              "t-SNE of 2,000 test images' encoder features: random initialization, after SupCon pre-training, and "
              "the cross-entropy classifier's penultimate features:", "", "![t-SNE](tsne.png)", "",
              "Confusion matrices: [SupCon + linear](supcon/confusion.png), "
              "[cross-entropy](cross-entropy/confusion.png). Full metrics: `supcon/metrics.json`, "
              "`cross-entropy/metrics.json`; training logs: `pretrain.log`, `linear.log`, `baseline.log`.", "",
              "## Environment", "", "```", json.dumps(env, indent=2), "```", ""]
    return "\n".join(lines)


def _row(rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
    return next(row for row in rows if row["method"] == METHODS[method])


def _epochs(row: dict[str, Any]) -> int:
    return int(re.match(r"(\d+) epochs", row["budget"])[1])


def _weakest(row: dict[str, Any], count: int = 4) -> list[str]:
    return sorted(row["per_class_f1"], key=row["per_class_f1"].get)[:count]


def render_fragments(report: Path) -> dict[str, str]:
    """The report's fragments, from its results.json and pretrain.log."""
    rows = json.loads((report / "results.json").read_text())["rows"]
    supcon, ce = _row(rows, "supcon"), _row(rows, "cross-entropy")
    minutes = sum(r["train_seconds"] + r["linear_seconds"] for r in rows) / 60

    def metrics(row: dict[str, Any]) -> str:
        return (f"{100 * row['accuracy']:.2f} % | {row['precision_macro']:.4f} | {row['recall_macro']:.4f} | "
                f"{row['f1_macro']:.4f} |")

    table = ("| method | train time | accuracy | macro precision | macro recall | macro F1 |\n"
             "|---|---:|---:|---:|---:|---:|\n"
             f"| SupCon ({_epochs(supcon)} epochs) + linear | {supcon['train_seconds'] / 60:.1f} min + "
             f"{supcon['linear_seconds'] / 60:.0f} min linear | {metrics(supcon)}\n"
             f"| cross-entropy ({ce['budget']}) | {ce['train_seconds'] / 60:.1f} min | {metrics(ce)}\n")
    gap = 100 * (ce["accuracy"] - supcon["accuracy"])
    weak = ", ".join(f"{name} {supcon['per_class_f1'][name]:.2f} / {ce['per_class_f1'][name]:.2f}"
                     for name in _weakest(supcon))
    same = "the same" if set(_weakest(supcon)) == set(_weakest(ce)) else "not the same"
    headline = (f"DenseNet201 after {_epochs(supcon)} SupCon epochs + linear: {100 * supcon['accuracy']:.2f} % test "
                f"top-1; cross-entropy on the same budget ({ce['budget']}): {100 * ce['accuracy']:.2f} % "
                f"({'ahead' if gap > 0 else 'behind'} by {abs(gap):.1f} points; `reports/supcon/README.md`).\n")
    log = (report / "pretrain.log").read_text()
    steps = int(re.search(r"step \d+/(\d+)", log)[1])
    epoch_seconds = [int(m[1]) for m in re.finditer(r"^epoch \d+/\d+: loss [\d.]+, (\d+) s", log, re.M)]
    training = ("Training times (`train_seconds` and `linear_seconds` in `reports/supcon/results.json`) sum to "
                f"{minutes:.0f} min; SupCon ran {len(epoch_seconds)} epochs of {steps} steps in "
                + " and ".join(f"{s:,} s" for s in epoch_seconds)
                + f" ({epoch_seconds[-1] / steps:.1f} s per step in the last; `reports/supcon/pretrain.log`). Test "
                f"split, {supcon['samples']:,} images; the four weakest classes are {same} for both (F1 SupCon / "
                f"cross-entropy: {weak}).\n")
    return {"table.md": table, "headline.md": headline, "training.md": training}


def write_fragments(report: Path) -> None:
    """Write the fragments into `report` (atomically)."""
    from compressor.report.fragments import write_texts

    for path in write_texts(report, render_fragments(report)):
        print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="directory holding supcon/ and cross-entropy/ metrics")
    parser.add_argument("--command", help="the command that regenerates the report")
    parser.add_argument("--fragments", action="store_true", help="only write the fragments, from results.json")
    args = parser.parse_args()
    if not args.fragments:
        if not args.command:
            parser.error("--command is required unless --fragments")
        rows = [method_row(name, json.loads((args.report / name / "metrics.json").read_text())) for name in METHODS]
        env = environment()
        write_json_atomic({"command": args.command, "rows": rows, "environment": env}, args.report / "results.json")
        text = markdown(rows, args.command, env)
        write_atomic(args.report / "README.md", lambda tmp: tmp.write_text(text))
        print(f"wrote {args.report / 'README.md'} and {args.report / 'results.json'}")
    write_fragments(args.report)


if __name__ == "__main__":
    main()
