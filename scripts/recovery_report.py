"""Write reports/recovery-fashion-mnist/: the anchor baselines (3 seeds), the recovery grid and issue 17's targets.

usage: .venv/bin/python scripts/recovery_report.py WORK -o reports/recovery-fashion-mnist
WORK holds baseline-s{0,1,2}.pt (from `compressor train`) and one sweep directory per recovery mode, as written by
scripts/recovery-fashion-mnist.sh.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from compressor._util.fileio import write_atomic, write_json_atomic
from compressor.models.checkpoint import load_checkpoint
from compressor.report.schema import RunRow, read_cell_records

MODES = {"plain": "one-shot, plain", "distilled": "one-shot, distilled", "gradual": "gradual (4 rounds), plain",
         "gradual-distilled": "gradual (4 rounds), distilled", "budgets": "one-shot, plain",
         "budgets-distilled": "one-shot, distilled", "magnitude": "one-shot, plain",
         "supcon-standard": "standard recipe (cross-entropy; BN recalibrated after structural steps)",
         "supcon-frozen-encoder": "frozen-encoder recipe (auto)"}
SUPCON_MODES = ("supcon-standard", "supcon-frozen-encoder")
PROBE_FILE = "supcon-dense-probe.json"
SIZE_TARGET_MB, POINT = 0.38, 0.01


def baselines(work: Path) -> list[dict[str, Any]]:
    """Seed, test accuracy, seconds and numerics of every anchor baseline checkpoint in `work`."""
    rows = []
    for path in sorted(work.glob("baseline-s*.pt")):
        train = load_checkpoint(path).history[-1]
        rows.append({"checkpoint": path.name, "seed": train["seed"], "accuracy": train["test"]["accuracy"],
                     "epochs": train["epochs"], "seconds": train["seconds"], "precision": train.get("precision"),
                     "probe": train.get("probe")})
    return rows


def cells(work: Path) -> list[dict[str, Any]]:
    """One flat row per finished cell of every mode's sweep directory."""
    rows = []
    for mode in MODES:
        for record in read_cell_records(work / mode).values():
            if record.status != "done" or record.report is None:
                rows.append({"mode": mode, "cell": record.key, "status": record.status, "error": record.error})
                continue
            report = record.report
            row = {**RunRow.from_report(report).as_dict(), "baseline_macs": report.baseline.macs,
                   "test_samples": report.dataset.samples, "amount": record.cell.get("amount")}
            finetune = report.recovery.finetune or {}
            rounds = report.recovery.extra.get("rounds") or []
            seconds = finetune.get("seconds", sum((r.get("finetune") or {}).get("seconds", 0) for r in rounds))
            if report.recovery.extra.get("prune_rounds", 1) > 1:  # the rounds' amounts; show the target instead
                row["params"] = f"{report.strategy}.amount={record.cell['amount']:g} (final)"
            rows.append({"mode": mode, "status": "done", "cell_seconds": record.seconds,
                         "finetune_seconds": seconds, "distill": bool(report.recovery.distill),
                         "prune_rounds": report.recovery.extra.get("prune_rounds", 1),
                         "bn_recalibrate": report.recovery.bn_recalibrate, **row})
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _speedup(row: dict[str, Any]) -> float | None:
    base, comp = row.get("baseline_deployed_latency_ms"), row.get("deployed_latency_ms")
    return base / comp if base and comp else None


def targets(dense: list[float], rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, measured, met?) for the targets of issue 17 that this grid can speak to."""
    mean = statistics.mean(dense) if dense else float("nan")
    done = [r for r in rows if r["status"] == "done" and r["mode"] not in SUPCON_MODES]
    within = [r for r in done if r["accuracy"] >= r["baseline_accuracy"] - POINT]
    small = [r for r in within if r["deployable_bytes"] <= SIZE_TARGET_MB * 1e6]
    smallest = min(within, key=lambda r: r["deployable_bytes"], default=None)
    fastest = max(within, key=lambda r: _speedup(r) or 0, default=None)
    half = [r for r in done if r["pipeline"] == "channels" and r["amount"] == 0.5 and r["finetune_epochs"] <= 2]
    best_half = max(half, key=lambda r: r["accuracy"], default=None)
    out = [("dense ResNet18 ≥ 93.5 % (mean of 3 seeds, ≤ 10 epochs)",
            f"{100 * mean:.2f} % over {len(dense)} seeds", "met" if len(dense) >= 3 and mean >= 0.935 else "not met")]
    out.append((f"a deployable file ≤ {SIZE_TARGET_MB} MB within 1 point of dense",
                f"smallest within 1 point: {smallest['deployable_bytes'] / 1e6:.2f} MB ({smallest['pipeline']} "
                f"{smallest['params']}, {MODES[smallest['mode']]})" if smallest else "no cell within 1 point",
                "met" if small else "not met"))
    speed = _speedup(fastest) if fastest else None
    out.append(("≥ 3× ONNX Runtime speed-up within 1 point of dense (training size)",
                f"best {speed:.2f}× ({fastest['pipeline']} {fastest['params']}, {MODES[fastest['mode']]}; timed "
                "inside the cell, see the note on load)" if speed else "no timed cell within 1 point",
                "met" if speed and speed >= 3 else "not met"))
    if best_half:
        gap = 100 * (best_half["baseline_accuracy"] - best_half["accuracy"])
        p, n = best_half["baseline_accuracy"], best_half["test_samples"]
        se = 100 * math.sqrt(2 * p * (1 - p) / n)
        out.append(("channels 0.5 within 0.5 points of dense after ≤ 2 epochs",
                    f"best {gap:.2f} points {'below' if gap >= 0 else 'above'} dense ({MODES[best_half['mode']]}, "
                    f"{best_half['finetune_epochs']:g} epochs; one seed, standard error of the gap {se:.2f})",
                    "met" if gap <= 0.5 else "not met"))
    supcon = [r for r in rows if r["status"] == "done" and r["mode"] in SUPCON_MODES]
    if supcon:
        good = [r for r in supcon if r["accuracy"] >= r["baseline_accuracy"] - POINT and (_speedup(r) or 0) >= 2]
        best = max(supcon, key=lambda r: r["accuracy"])
        out.append(("DenseNet201 SupCon classifier: a pruned model within 1 point of dense at ≥ 2× ONNX Runtime "
                    "speed-up", f"best {100 * (best['accuracy'] - best['baseline_accuracy']):+.2f} points vs dense "
                    f"at ×{_speedup(best) or 0:.2f} ({best['pipeline']} {best['params']}, {MODES[best['mode']]})",
                    "met" if good else "not met"))
    return out


def markdown(base: list[dict[str, Any]], rows: list[dict[str, Any]], command: str, note: str,
             probe: dict[str, Any] | None = None) -> str:
    """The report's README."""
    dense = [b["accuracy"] for b in base]
    lines = ["# Recovery on ResNet18 / Fashion-MNIST: the anchor recipe, distillation and gradual pruning", "",
             f"Regenerate: `{command}`.", "", note, "", "## Dense baselines (`--arch resnet18-s1 --recipe anchor`)", "",
             "| seed | test top-1 % | epochs | training s | precision | probe (s per step) |",
             "|---|---|---|---|---|---|"]
    for b in base:
        lines.append(f"| {b['seed']} | {_pct(b['accuracy'])} | {b['epochs']} | {b['seconds']:.0f} | {b['precision']} "
                     f"| {json.dumps(b['probe'])} |")
    if len(dense) > 1:
        lines += ["", f"Mean {100 * statistics.mean(dense):.2f} %, sample standard deviation "
                      f"{100 * statistics.stdev(dense):.2f} points, over {len(dense)} seeds."]
    lines += ["", "## Recovery grid (seed-0 baseline)", "",
              "| pipeline | parameters | recovery | fine-tune epochs | top-1 % before recovery | top-1 % | vs dense "
              "(points) | deployable MB | MACs (M) | ORT ms (× vs dense) | fine-tune s | cell s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    resnet = [r for r in rows if r["mode"] not in SUPCON_MODES]
    first = next((r for r in resnet if r["status"] == "done"), None)
    if first:
        dense_ms = statistics.median(r["baseline_deployed_latency_ms"] for r in resnet if r["status"] == "done")
        lines.append(f"| *dense* | | | | | {_pct(first['baseline_accuracy'])} | | "
                     f"{first['baseline_deployable_bytes'] / 1e6:.2f} | {first['baseline_macs'] / 1e6:.1f} | "
                     f"{dense_ms:.3f} (median over cells) | | |")
    lines += [_row(r) for r in sorted((r for r in resnet if r["status"] == "done"),
                                      key=lambda r: (r["pipeline"], r["params"], r["mode"], r["finetune_epochs"]))]
    if first:
        p, n = first["baseline_accuracy"], first["test_samples"]
        se = math.sqrt(p * (1 - p) / n)
        lines += ["", f"One seed per cell. On {n:,} test images the binomial standard error of a top-1 near "
                      f"{100 * p:.1f} % is {100 * se:.2f} points, so two cells differing by less than "
                      f"{200 * math.sqrt(2) * se:.2f} points (two standard errors of a difference) are reported as "
                      "no established difference."]
    failed = [r for r in rows if r["status"] != "done"]
    if failed:
        lines += ["", "Failed cells: " + "; ".join(f"{r['mode']}/{r['cell']}: {r['error']}" for r in failed)]
    lines += supcon_section(rows, probe)
    lines += ["", "## Targets of issue 17", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {ok} |" for t, m, ok in targets(dense, rows)]
    return "\n".join(lines) + "\n"


def _row(r: dict[str, Any]) -> str:
    """One grid cell as a table row."""
    speed = _speedup(r)
    latency = f"{r['deployed_latency_ms']:.3f} (×{speed:.2f})" if speed else "-"
    return (f"| {r['pipeline']} | {r['params']} | {MODES[r['mode']]} | {r['finetune_epochs']:g} | "
            f"{_pct(r['accuracy_before_recovery'])} | {_pct(r['accuracy'])} | "
            f"{100 * (r['accuracy'] - r['baseline_accuracy']):+.2f} | {r['deployable_bytes'] / 1e6:.2f} | "
            f"{r['macs'] / 1e6:.1f} | {latency} | {r['finetune_seconds']:.0f} | {r['cell_seconds']:.0f} |")


def supcon_section(rows: list[dict[str, Any]], probe: dict[str, Any] | None) -> list[str]:
    """The DenseNet201 SupCon classifier: what recovery settings cost the dense model, then its pruned cells."""
    if not probe and not any(r["mode"] in SUPCON_MODES for r in rows):
        return []
    lines = ["", "## DenseNet201 SupCon + linear classifier", "",
             "The classifier is `runs/supcon-fashion-mnist/supcon-classifier.pt` from `CLASSIFIER_ONLY=1 "
             "scripts/supcon-fashion-mnist.sh` (2 SupCon epochs, linear evaluation; the command of `reports/supcon/`, "
             "trained again on this machine). Its cells use one epoch of recovery.", ""]
    if probe:
        settings = probe["settings"]
        lines += [f"What each recovery setting does to the *uncompressed* classifier (dense: "
                  f"{_pct(settings['dense']['accuracy'])} %), from `{PROBE_FILE}` (`{probe['command']}`):", "",
                  "| setting | top-1 % | change (points) | seconds |", "|---|---|---|---|"]
        for name, row in settings.items():
            if name == "dense":
                continue
            if "diverged" in row:
                lines.append(f"| {name} | diverged | | |")
                continue
            lines.append(f"| {name} | {_pct(row['accuracy'])} | {row['change_points']:+.2f} | {row['seconds']:.0f} |")
    cells = [r for r in rows if r["mode"] in SUPCON_MODES and r["status"] == "done"]
    if cells:
        lines += ["", "| pipeline | parameters | recovery | fine-tune epochs | top-1 % before recovery | top-1 % | vs "
                      "dense (points) | deployable MB | MACs (M) | ORT ms (× vs dense) | fine-tune s | cell s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|",
                  f"| *dense* | | | | | {_pct(cells[0]['baseline_accuracy'])} | | "
                  f"{cells[0]['baseline_deployable_bytes'] / 1e6:.2f} | {cells[0]['baseline_macs'] / 1e6:.1f} | "
                  f"{statistics.median(r['baseline_deployed_latency_ms'] for r in cells):.3f} (median over cells) "
                  f"| | |"]
        lines += [_row(r) for r in sorted(cells, key=lambda r: (r["pipeline"], r["params"], r["mode"]))]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--command", default="scripts/recovery-fashion-mnist.sh")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    base, rows = baselines(args.work), cells(args.work)
    args.output.mkdir(parents=True, exist_ok=True)
    probe_path = args.output / PROBE_FILE
    probe = json.loads(probe_path.read_text()) if probe_path.exists() else None
    write_json_atomic({"baselines": base, "cells": rows}, args.output / "results.json")
    text = markdown(base, rows, args.command, args.note, probe)
    write_atomic(args.output / "README.md", lambda tmp: tmp.write_text(text))
    print(f"wrote {args.output / 'README.md'} ({len(base)} baselines, {len(rows)} cells)")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from recovery_fragments import write_fragments

    write_fragments(args.output)  # the docs' figures (needs supcon-dense-probe.json beside results.json)


if __name__ == "__main__":
    main()
