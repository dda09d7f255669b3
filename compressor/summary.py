"""Summaries of many run reports: one flat row per run, written as JSON, CSV and a Markdown README table."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Any

from compressor.environment import environment
from compressor.errors import CompressorError
from compressor.fileio import write_atomic, write_json_atomic
from compressor.pipeline import REPORT_SCHEMA

ROW_FIELDS = ("pipeline", "params", "finetune_epochs", "accuracy", "accuracy_before_recovery", "f1_macro",
              "sparsity", "params_nonzero", "macs", "deployable_bytes", "latency_torch_ms", "latency_ort_ms",
              "latency_int8_ms", "baseline_accuracy", "baseline_deployable_bytes", "baseline_latency_torch_ms",
              "baseline_latency_ort_ms", "strategy_seconds", "arch", "dataset", "input_size", "seed", "command",
              "source")


def load_run_report(path: Path) -> dict[str, Any]:
    """A `compressor run` JSON report, checked for its schema."""
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CompressorError(f"run report {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompressorError(f"run report {path} is not readable JSON ({exc})") from None
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        found = report.get("schema") if isinstance(report, dict) else type(report).__name__
        raise CompressorError(f"{path} is not a run report (schema {found!r}; expected {REPORT_SCHEMA!r})")
    return report


def _median(measured: dict[str, Any], backend: str) -> float | None:
    return measured.get("latency", {}).get(backend, {}).get("median_ms")


def _params_text(report: dict[str, Any]) -> str:
    """`step.key=value` for every parameter that differs from nothing in particular: the ones a reader needs."""
    parts = []
    for step in report["steps"]:
        params = step["params"]
        shown = {k: v for k, v in params.items() if k in ("amount", "preset", "blocks", "pattern", "importance",
                                                          "scope", "n", "m") and v not in ("", None, "none")}
        parts.extend(f"{step['strategy']}.{k}={v}" for k, v in shown.items())
    return " ".join(parts)


def run_row(report: dict[str, Any], source: str = "") -> dict[str, Any]:
    """One flat row (see ROW_FIELDS) from a run report."""
    base, comp = report["baseline"], report["compressed"]
    return {
        "pipeline": report["strategy"],
        "params": _params_text(report),
        "finetune_epochs": report["recovery"].get("finetune_epochs", 0),
        "accuracy": comp["accuracy"],
        "accuracy_before_recovery": comp.get("accuracy_before_recovery"),
        "f1_macro": comp["f1_macro"],
        "sparsity": comp["sparsity"],
        "params_nonzero": comp["params_nonzero"],
        "macs": comp["macs"],
        "deployable_bytes": comp["deployable_bytes"],
        "latency_torch_ms": _median(comp, "torch"),
        "latency_ort_ms": _median(comp, "onnxruntime"),
        "latency_int8_ms": _median(comp, "onnxruntime-int8"),
        "baseline_accuracy": base["accuracy"],
        "baseline_deployable_bytes": base["deployable_bytes"],
        "baseline_latency_torch_ms": _median(base, "torch"),
        "baseline_latency_ort_ms": _median(base, "onnxruntime"),
        "strategy_seconds": round(sum(step["seconds"] for step in report["steps"]), 1),
        "arch": report["model"]["arch"],
        "dataset": report["dataset"]["name"],
        "input_size": report["model"]["input_size"],
        "seed": report["model"]["seed"],
        "command": report.get("command"),
        "source": source,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _ms(value: float | None, base: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} (x{value / base:.2f})" if base else f"{value:.2f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of runs: accuracy one-shot or after fine-tuning, sparsity, MACs, size, latency vs baseline."""
    header = ("| pipeline | parameters | fine-tune epochs | top-1 % | macro F1 | sparsity % | non-zero params | "
              "MACs (M) | deployable MB | torch ms (vs base) | ORT ms (vs base) | strategy s |")
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    first = rows[0]

    def typical(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return statistics.median(values) if values else None

    lines.append(f"| *baseline* | | | {_pct(first['baseline_accuracy'])} | | 0.00 | | | "
                 f"{first['baseline_deployable_bytes'] / 1e6:.2f} | {_ms(typical('baseline_latency_torch_ms'), None)} | "
                 f"{_ms(typical('baseline_latency_ort_ms'), None)} | |")
    for row in rows:
        ort = (f"{_ms(row['latency_int8_ms'], row['baseline_latency_ort_ms'])} int8"
               if row["latency_int8_ms"] is not None else _ms(row["latency_ort_ms"], row["baseline_latency_ort_ms"]))
        lines.append(
            f"| {row['pipeline']} | {row['params'] or '-'} | {row['finetune_epochs']} | {_pct(row['accuracy'])} | "
            f"{row['f1_macro']:.3f} | {_pct(row['sparsity'])} | {row['params_nonzero']:,} | {row['macs'] / 1e6:.1f} | "
            f"{row['deployable_bytes'] / 1e6:.2f} | {_ms(row['latency_torch_ms'], row['baseline_latency_torch_ms'])} | "
            f"{ort} | {row['strategy_seconds']:g} |")
    return "\n".join(lines) + "\n"


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _readme(rows: list[dict[str, Any]], title: str, command: str | None, note: str | None) -> str:
    env = environment()
    baselines = {(r["arch"], r["dataset"], r["input_size"], r["seed"]) for r in rows}
    first = rows[0]
    parts = [
        f"# {title}\n",
        *([f"{note}\n"] if note else []),
        f"{len(rows)} runs of {first['arch']} on {first['dataset']} at {first['input_size']} px "
        f"(test split; latency at batch 1, median, timed interleaved with the baseline inside each run; the ratio "
        "in brackets is against that run's own baseline timing, and the baseline row shows the median of the "
        "baseline timings over all runs).\n",
        "Top-1 and macro F1 are measured on the deployed artifact (for int8, the quantized ONNX file). "
        "Sparsity counts zero weights in conv and linear layers; MACs are dense MACs of the (possibly physically "
        "smaller) network; the deployable file is the smallest lossless artifact (see `compressor run` output).\n",
        markdown_table(rows),
    ]
    if len(baselines) > 1:
        parts.append(f"Note: these runs come from {len(baselines)} different baselines; compare rows with care.\n")
    parts.append("## Regenerate\n")
    if command:
        parts.append(f"This summary:\n\n```\n{command}\n```\n")
    parts.append("Each run:\n\n```\n" + "\n".join(r["command"] or f"(no command recorded: {r['source']})"
                                                  for r in rows) + "\n```\n")
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v)  # type: ignore[union-attr]
    parts.append(f"## Environment\n\n{env['cpu']}, {env['cpu_count']} cores, torch threads {env['torch_threads']}, "
                 f"Python {env['python']}; {packages}; git {env['git_commit']}.\n")
    return "\n".join(parts)


def write_summary(report_paths: list[Path], out_dir: Path, *, title: str | None = None,
                  command: str | None = None, note: str | None = None) -> list[dict[str, Any]]:
    """Read run reports and write results.json, results.csv and README.md (a Markdown table) into `out_dir`."""
    if not report_paths:
        raise CompressorError("compressor report needs at least one run report (a JSON file from `compressor run`)")
    rows = [run_row(load_run_report(p), str(p)) for p in report_paths]
    rows.sort(key=lambda r: (r["pipeline"], r["params"], r["finetune_epochs"]))
    first = rows[0]
    title = title or f"{first['arch']} on {first['dataset']}: strategies compared"
    write_json_atomic({"schema": "compressor.results/1", "rows": rows}, out_dir / "results.json")
    write_atomic(out_dir / "results.csv", lambda tmp: tmp.write_text(_csv_text(rows)))
    write_atomic(out_dir / "README.md", lambda tmp: tmp.write_text(_readme(rows, title, command, note)))
    return rows

