"""Presenting results: rich tables for runs (baseline vs compressed) and for single-model benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from compressor.report.schema import RunReport

# (attribute of schema.Measurement, label, format) of each line of the run table
_ROWS: tuple[tuple[str, str, str], ...] = (
    ("accuracy_before_recovery", "top-1 before recovery", "pct"),
    ("accuracy", "top-1 accuracy (deployed model)", "pct"),
    ("f1_macro", "macro F1", "ratio3"),
    ("sparsity", "sparsity (conv+linear weights)", "pct"),
    ("sparsity_all", "sparsity (all parameters)", "pct"),
    ("params_nonzero", "non-zero parameters", "count"),
    ("macs", "MACs (dense)", "count"),
    ("macs_sparse", "MACs (zero weights skipped)", "count"),
    ("size_bytes", "fp32 state_dict file", "bytes"),
    ("deployable_bytes", "deployable file", "bytes"),
    ("latency_ms", "latency torch CPU (median)", "ms"),
    ("latency_ort_ms", "latency ONNX Runtime CPU (median)", "ms"),
    ("latency_int8_ms", "latency ONNX Runtime int8 (median)", "ms"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * value:.2f} %"
    if kind == "ratio3":
        return f"{value:.3f}"
    if kind == "count":
        return f"{value / 1e6:.3f} M" if value >= 1e5 else f"{value:,}"
    if kind == "bytes":
        return f"{value / 1e6:.2f} MB"
    if kind == "ms":
        return f"{value:.2f} ms"
    return str(value)


def _change(before: Any, after: Any, kind: str) -> str:
    if before is None or after is None:
        return "-"
    if kind == "pct":
        return f"{100 * (after - before):+.2f} pt"
    if kind == "ratio3":
        return f"{after - before:+.3f}"
    return f"x{after / before:.2f}" if before else "-"


def run_table(report: RunReport | Mapping[str, Any]) -> Table:
    """A baseline-vs-compressed table of the headline metrics of a run report (or of its JSON object)."""
    if not isinstance(report, RunReport):
        report = RunReport.from_dict(report)
    base, comp, model, data = report.baseline, report.compressed, report.model, report.dataset
    batch = comp.measure_config["batch_size"]
    title = (f"{report.strategy} on {model.arch} / {data.name} "
             f"({data.split} split, {data.samples} images, {model.input_size} px, latency at batch {batch})")
    table = Table(title=title)
    for column, justify in (("metric", "left"), ("baseline", "right"), ("compressed", "right"),
                            ("change", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for key, label, kind in _ROWS:
        before, after = getattr(base, key), getattr(comp, key)
        if before is None and after is None and key in ("accuracy_before_recovery", "latency_int8_ms"):
            continue
        table.add_row(label, _fmt(before, kind), _fmt(after, kind), _change(before, after, kind))
    return table


def size_table(size: dict[str, Any]) -> Table:
    """Every artifact as written, zipped and xz-compressed (MB; bytes of the raw file), the deployable one marked."""
    table = Table(title="size on disk (real files; bytes of every variant in the JSON)")
    by_variant = {row["variant"]: row for row in size["variants"]}
    compressions = [c for c in ("zip", "xz") if any(r["compression"] == c for r in size["variants"])]
    for column in ("artifact", "lossless", "bytes", "MB", *(f"{c} MB" for c in compressions)):
        table.add_column(column, justify="left" if column == "artifact" else "right")

    def cell(row: dict[str, Any]) -> str:
        return f"{row['mb']:.3f}{' *' if row['deployable'] else ''}"

    for name in [r["variant"] for r in size["variants"] if r["compression"] is None]:
        raw = by_variant[name]
        table.add_row(name, "yes" if raw["lossless"] else "no", f"{raw['bytes']:,}", cell(raw),
                      *(cell(by_variant[f"{name}+{c}"]) for c in compressions))
    table.caption = f"* deployable: {size['deployable']}, the smallest lossless file"
    return table


def latency_table(latency: dict[str, Any]) -> Table:
    """Latency statistics per backend, with the spread of back-to-back repeats (or of fresh processes) when
    measured more than once."""
    first = next(iter(latency.values()))
    table = Table(title=f"latency, ms per call (batch {first['batch_size']}, {first['input_size']} px)")
    for column in ("backend", "threads", "median", "p90", "p99", "min", "IQR", "runs", "repeats"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    skipped = []
    for backend, stats in latency.items():
        if "skipped" in stats:
            table.add_row(backend, "-", "skipped", *["-"] * 6)
            skipped.append(f"{backend} skipped: {stats['skipped']}")
            continue
        spread = (f"{len(stats['repeat_medians_ms'])}x, spread {100 * stats['repeat_spread']:.2f} %"
                  if "repeat_spread" in stats else "1")
        if "process_spread" in stats:
            spread = f"{stats['processes']} processes, spread {100 * stats['process_spread']:.2f} %"
        table.add_row(backend, str(stats["threads"] or "-"),
                      *(f"{stats[k]:.3f}" for k in ("median_ms", "p90_ms", "p99_ms", "min_ms", "iqr_ms")),
                      str(stats["runs"]), spread)
    if skipped:
        table.caption = "; ".join(skipped)
    return table


def accuracy_table(accuracy: dict[str, Any]) -> Table | None:
    """Classification metrics of the torch model and of the exported ONNX model on the same split."""
    if "skipped" in accuracy:
        return None
    table = Table(title=f"accuracy on the {accuracy['split']} split ({accuracy['samples']} images)")
    for column in ("backend", "top-1", "top-5", "precision", "recall", "F1 (macro)", "vs torch"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for backend in [b for b in ("torch", "onnxruntime", "onnxruntime-int8") if b in accuracy]:
        m = accuracy[backend]
        versus = (f"max |Δlogit| {m['max_abs_logit_diff_vs_torch']:.1e}, top-1 agree "
                  f"{100 * m['top1_agreement_with_torch']:.2f} %") if backend != "torch" else "-"
        table.add_row(backend, f"{100 * m['accuracy']:.2f} %", f"{100 * m['top5']:.2f} %" if "top5" in m else "-",
                      f"{m['precision_macro']:.4f}", f"{m['recall_macro']:.4f}", f"{m['f1_macro']:.4f}", versus)
    return table


def complexity_table(cx: dict[str, Any], top: int = 10) -> Table:
    """Totals and the `top` conv/linear layers by MACs: shape, params, sparsity, dense and sparse MACs."""
    table = Table(title=(f"complexity at {cx['input_size']} px, batch 1: {cx['params_total']:,} params "
                         f"({cx['params_nonzero']:,} non-zero), {cx['macs'] / 1e6:.2f} M MACs dense, "
                         f"{cx['macs_sparse'] / 1e6:.2f} M with zero weights skipped"))
    for column in ("layer", "type", "shape", "params", "sparsity", "MACs", "MACs (sparse)"):
        table.add_column(column, justify="left" if column in ("layer", "type", "shape") else "right")
    layers = sorted(cx["layers"], key=lambda r: r["macs"], reverse=True)
    for row in layers[:top]:
        table.add_row(row["layer"], row["type"], "×".join(map(str, row["shape"])), f"{row['params']:,}",
                      f"{100 * row['sparsity']:.1f} %", f"{row['macs'] / 1e6:.2f} M",
                      f"{row['macs_sparse'] / 1e6:.2f} M")
    if len(layers) > top:
        table.caption = f"{len(layers) - top} smaller layers not shown (all are in the JSON)"
    return table


def sensitivity_table(record: dict[str, Any]) -> Table:
    """The layer-sensitive scan: accuracy drop per layer and scanned ratio, the ratio each layer got, and why."""
    sensitivity = record["sensitivity"]
    source = "cached scan" if sensitivity["cached"] else "fresh scan"
    table = Table(title=(f"layer sensitivity ({source}; calibration accuracy "
                         f"{100 * sensitivity['baseline_accuracy']:.2f} %; accuracy drop in points / loss increase "
                         "when the layer alone is pruned, BatchNorm on batch statistics)"))
    table.add_column("layer")
    table.add_column("params", justify="right")
    for ratio in sensitivity["ratios"]:
        table.add_column(f"@{ratio:g}", justify="right")
    table.add_column("chosen ratio", justify="right")
    for name, info in record["layers"].items():
        table.add_row(name, f"{info['params']:,}",
                      *(f"{100 * d:.1f} / {loss:.3f}"
                        for d, loss in zip(info["scan_drops"], info["scan_loss_increase"])),
                      f"{info['chosen_ratio']:.3f}")
    allocation = record.get("allocation")
    if allocation:
        judged = ", ".join(f"{name} {c['calib_loss']:.4f} ({100 * c['calib_accuracy']:.2f} %)"
                           for name, c in allocation["candidates"].items())
        table.caption = (f"chosen ratios: the {allocation['chosen']} allocation, lowest calibration loss after "
                         f"BatchNorm recalibration among: {judged}")
    return table


def bench_renderables(measured: dict[str, Any], layers: int = 10) -> list[Table | str]:
    """What `compressor bench` prints for its measurements, in order: grid, size, latency, accuracy, complexity."""
    tables = [grid_table(measured["latency_grid"])] if "latency_grid" in measured else []
    tables += [table for table in (size_table(measured["size"]), latency_table(measured["latency"]),
                                   accuracy_table(measured["evaluation"]),
                                   complexity_table(measured["complexity"], layers)) if table is not None]
    if "skipped" in measured["evaluation"]:
        tables.append(f"accuracy: skipped ({measured['evaluation']['skipped']})")
    return tables


def grid_table(grid: dict[str, Any]) -> Table:
    """Median latency (ms) of one model per input size, batch size, thread count and backend, with MACs."""
    table = Table(title="latency grid, median ms per call (per image in brackets)")
    for column in ("px", "MACs", "batch", "threads", "backend", "median", "p90", "runs"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for row in grid["rows"]:
        macs = grid["macs"].get(str(row["input_size"]))
        if "median_ms" not in row:
            table.add_row(str(row["input_size"]), _macs(macs), str(row["batch_size"]), str(row["threads"]),
                          row["backend"], "skipped", "-", "-")
            continue
        table.add_row(str(row["input_size"]), _macs(macs), str(row["batch_size"]), str(row["threads"]),
                      row["backend"].replace("onnxruntime", "ORT"),
                      f"{row['median_ms']:.3f} ({row['median_ms'] / row['batch_size']:.3f})",
                      f"{row['p90_ms']:.3f}", str(row["runs"]))
    return table


def deployment_table(deployment: dict[str, Any]) -> Table:
    """Compressed vs baseline median latency per grid cell: speed-up beside the MAC reduction at that size."""
    table = Table(title=f"speed-up over the baseline (trained at {deployment['trained_size']} px, deployed at "
                        f"{deployment['deploy_size']} px; int8 against the baseline's fp32 ONNX Runtime)")
    for column in ("px", "batch", "threads", "backend", "baseline ms", "compressed ms", "speed-up", "MACs ÷"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for row in deployment["speedups"]:
        reduction = row["mac_reduction"]
        table.add_row(str(row["input_size"]), str(row["batch_size"]), str(row["threads"]),
                      row["backend"].replace("onnxruntime", "ORT"), f"{row['baseline_ms']:.3f}",
                      f"{row['compressed_ms']:.3f}", f"×{row['speedup']:.2f}",
                      f"×{reduction:.2f}" if reduction else "-")
    return table


def _macs(macs: int | None) -> str:
    return "-" if macs is None else f"{macs / 1e6:,.1f} M"
