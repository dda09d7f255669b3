"""Summaries of many run reports: one flat `RunRow` per run, written as JSON, CSV and a Markdown README table."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compressor._util.environment import environment
from compressor._util.fileio import write_atomic, write_json_atomic
from compressor.errors import CompressorError
from compressor.measure.load import UNDER_LOAD_CORES
from compressor.report.by_amount import cost_table
from compressor.report.difference_plot import plot_differences
from compressor.report.layer_plots import plot_layer_heatmap
from compressor.report.numbers import p_value, percent
from compressor.report.pareto import label, near_dense_picks, pareto_front, pick_under_budget, typical_baseline
from compressor.report.schema import RESULTS_SCHEMA, RunReport, RunRow, read_cell_records, read_run_report
from compressor.report.tradeoff_plot import key_names, plot_tradeoffs
from compressor.report.uncertainty import (
    ALPHA,
    NOT_COMPARABLE,
    Difference,
    accuracy_text,
    binomial_se,
    differences,
    seed_groups,
)

Row = Mapping[str, Any]


def collect_rows(paths: list[Path]) -> list[RunRow]:
    """Rows from run reports and sweep directories (their finished cells); a cell found twice counts once."""
    return [row for row, _ in collect_runs(paths)]


def collect_runs(paths: list[Path]) -> list[tuple[RunRow, RunReport]]:
    """(row, full report) of every run in the reports and sweep directories; a cell found twice counts once."""
    rows, seen = [], set()
    for path in paths:
        if Path(path).is_dir():
            records = read_cell_records(Path(path))
            if not records and not (Path(path) / "cells").is_dir():
                raise CompressorError(f"{path} is a directory but not a sweep (no cells/ inside)")
            for key, record in records.items():
                if record.status == "done" and key not in seen:
                    if record.report is None:
                        raise CompressorError(f"{path}/cells/{key}.json is recorded as done but holds no report")
                    seen.add(key)
                    rows.append((RunRow.from_report(record.report, f"{path}/cells/{key}.json"), record.report))
        else:
            report = read_run_report(path)
            rows.append((RunRow.from_report(report, str(path)), report))
    if not rows:
        raise CompressorError("no finished runs found in " + ", ".join(map(str, paths)))
    return rows


def failed_cells(paths: list[Path]) -> list[tuple[str, str]]:
    """(key, last error line) of every cell recorded as failed in the sweep directories among `paths`."""
    failed = [(key, record.error or "") for path in paths if Path(path).is_dir()
              for key, record in read_cell_records(Path(path)).items() if record.status == "failed"]
    return sorted(set(failed))


def _pct_se(row: Row) -> str:
    """Top-1 with its binomial standard error over the test images: `91.71 ± 0.28`."""
    return accuracy_text(row["accuracy"], binomial_se(row["accuracy"], row.get("samples")), "se", 1)


def _ms(value: float | None, base: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} (x{value / base:.2f})" if base else f"{value:.2f}"


def markdown_table(rows: Sequence[Row]) -> str:
    """A Markdown table of runs: accuracy one-shot or after fine-tuning, sparsity, MACs, size, latency vs baseline."""
    header = ("| pipeline | parameters | fine-tune epochs | seed | top-1 % before fine-tuning | top-1 % ± SE | "
              "macro F1 | sparsity % | non-zero params | MACs (M) | fp32 MB | deployable MB | torch ms (vs base) | "
              "ORT ms (vs base) | strategy s |")
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    first = rows[0]
    lines.append(f"| *baseline* | | | | | {percent(first['baseline_accuracy'])} | | 0.00 | | | | "
                 f"{first['baseline_deployable_bytes'] / 1e6:.2f} | "
                 f"{_ms(typical_baseline(rows, 'baseline_latency_torch_ms'), None)} | "
                 f"{_ms(typical_baseline(rows, 'baseline_latency_ort_ms'), None)} | |")
    for row in rows:
        ort = (f"{_ms(row['latency_int8_ms'], row['baseline_latency_ort_ms'])} int8"
               if row["latency_int8_ms"] is not None else _ms(row["latency_ort_ms"], row["baseline_latency_ort_ms"]))
        lines.append(
            f"| {row['pipeline']} | {row['params'] or '-'} | {row['finetune_epochs']} | {_seed_text(row)} | "
            f"{percent(row['accuracy_before_recovery']) if row['finetune_epochs'] else ''} | {_pct_se(row)} | "
            f"{row['f1_macro']:.3f} | {percent(row['sparsity'])} | {row['params_nonzero']:,} | "
            f"{row['macs'] / 1e6:.1f} | "
            f"{_mb(row['fp32_bytes'])} | {row['deployable_bytes'] / 1e6:.2f} | "
            f"{_ms(row['latency_torch_ms'], row['baseline_latency_torch_ms'])} | "
            f"{ort} | {row['strategy_seconds']:g} |")
    return "\n".join(lines) + "\n"


def _seed_text(row: Row) -> str:
    """The run's seed, with the baseline's training seed when that was set apart (`1/b2`)."""
    base = row.get("baseline_seed")
    return str(row["seed"]) if base is None or base == row["seed"] else f"{row['seed']}/b{base}"


def seeds_table(rows: Sequence[Row]) -> str:
    """Runs of each setting over seeds: mean ± sd of top-1 (one run: ± its binomial SE), with the seed count."""
    lines = ["| pipeline | parameters | fine-tune epochs | runs | seeds (strategy/baseline) | top-1 % mean ± sd | "
             "before fine-tuning % | deployable MB | MACs (M) | deployed ms |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for group in seed_groups(rows):
        before = group.mean_of("accuracy_before_recovery")
        latency = group.mean_of("deployed_latency_ms")
        seeds = ", ".join(f"{s}" if b is None else f"{s}/b{b}" for b, s in group.seeds)
        lines.append(f"| {group.setting['pipeline']} | {group.setting['params'] or '-'} | "
                     f"{group.setting['finetune_epochs']} | {group.n} | {seeds} | "
                     f"{accuracy_text(group.mean, group.spread, group.spread_kind, group.n)} | "
                     f"{percent(before) if group.setting['finetune_epochs'] else ''} | "
                     f"{group.mean_of('deployable_bytes') / 1e6:.2f} | {group.mean_of('macs') / 1e6:.1f} | "
                     f"{'-' if latency is None else f'{latency:.2f}'} |")
    return "\n".join(lines) + "\n"


def reference_differences(rows: Sequence[Row], reference: str) -> list[Difference]:
    """`differences` against the reference; a reference that matches no run is a usage error."""
    diffs = differences(rows, reference)
    if not diffs:
        raise CompressorError(f"--reference {reference!r} matches no run at the amounts and budgets of the others; "
                              f"pipelines here: {', '.join(sorted({r['pipeline'] for r in rows}))}")
    return diffs


def difference_section(diffs: Sequence[Difference], reference: str, before_recovery: bool = False) -> str:
    """Each method minus the reference at the same amount and budget, paired by seed, with a verdict (with
    `before_recovery`: on the accuracy the strategies alone reached, before the run's recovery)."""
    if before_recovery:
        heading, figure = f"## Difference from {reference} before recovery\n", "difference-before-recovery.png"
        what = (f"Top-1 before recovery (the strategies alone, measured before BatchNorm recalibration and "
                f"fine-tuning in the same runs) of each method minus {reference}'s")
    else:
        heading, figure, what = f"## Difference from {reference}\n", "difference.png", \
            f"Top-1 of each method minus {reference}'s"
    lines = [heading,
             f"![top-1 minus {reference}, with 95 % confidence intervals]({figure})\n",
             f"{what} at the same amount and fine-tuning budget, in points, "
             "paired by seed (baseline and strategy seed). With two or more pairs: mean ± sd of the paired "
             "differences, tested with Student's t on the seeds' spread (sd²/pairs) plus the test set's own noise, "
             "which every seed shares (the standard error of a paired difference of proportions from per-image "
             "correctness where both runs recorded it, else the two binomial standard errors combined), on "
             "Welch–Satterthwaite degrees of freedom (pairs − 1 when the seeds' spread dominates: 2 or 3 seeds give "
             "wide intervals, not a known error); with one pair: McNemar's exact test on the images the two runs "
             "disagree on where both recorded per-image correctness, else a z test on the two binomial standard "
             f"errors combined. A difference whose two-sided p-value is {ALPHA:g} or more is reported as no "
             "difference; `pairs` is the number of seeds the verdict rests on. A method whose runs got other help "
             "than the reference's (BatchNorm recalibration, by the recovery or inside the strategy) is paired with "
             f"them but gets no verdict: *{NOT_COMPARABLE}*.\n",
             difference_table([d.as_dict() for d in diffs])]
    return "\n".join(lines)


def difference_table(diffs: Sequence[Row]) -> str:
    """The differences (`Difference.as_dict()` records, as results.json keeps them) as a Markdown table."""
    lines = ["| pipeline | parameters | fine-tune epochs | pairs | difference (points) | SE | test | p | verdict |",
             "|---|---|---|---:|---:|---:|---|---:|---|"]
    for d in diffs:
        spread = f" ± {d['sd']:.2f}" if d["sd"] is not None else ""
        se = "-" if d["se"] is None else f"{d['se']:.2f}"
        lines.append(f"| {d['pipeline']} | {d['params'] or '-'} | {d['finetune_epochs']} | {d['pairs']} | "
                     f"{d['mean']:+.2f}{spread} | {se} | {d['test']} | {p_value(d['p'])} | {d['verdict']} |")
    return "\n".join(lines) + "\n"


def load_note(rows: Sequence[Row]) -> str:
    """The runs whose timing shared the machine with another busy process: their latencies are not measurements."""
    loaded = [label(r) for r in rows if r.get("timed_under_load")]
    return (f"**Timed under load:** {len(loaded)} of {len(rows)} runs shared the CPU with another busy process "
            f"during a timing (more than {UNDER_LOAD_CORES:g} core on average; each latency's `load` record in its "
            "report names the busiest processes); their latencies are not measurements: "
            + ", ".join(loaded) + ".\n")


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.2f}"


def tradeoff_section(rows: Sequence[Row], budget: dict[str, float | None] | None) -> str:
    """Pareto fronts, the headline picks (within 1 point of the baseline) and the user's budget pick, as Markdown."""
    lines = ["## Trade-offs\n", "![accuracy vs size, latency and MACs: colour per strategy, marker per fine-tuning "
                                "budget, hollow for int8, Pareto fronts numbered](tradeoffs.png)\n"]
    for cost, name in (("deployable_bytes", "size"), ("deployed_latency_ms", "latency")):
        front = [label(rows[i]) for i in pareto_front(rows, cost)]
        lines.append(f"Pareto front, accuracy vs {name} (cheapest first): " + (", ".join(front) or "-") + ".\n")
    smallest, fastest = near_dense_picks(rows)
    lines.append(f"Within 1 point of the baseline ({percent(rows[0]['baseline_accuracy'])} %): smallest file "
                 + (f"**{label(smallest)}**, {smallest['deployable_bytes'] / 1e6:.2f} MB at "
                    f"{percent(smallest['accuracy'])} %" if smallest else "none")
                 + "; fastest " + (f"**{label(fastest)}**, {fastest['deployed_latency_ms']:.2f} ms at "
                                   f"{percent(fastest['accuracy'])} %" if fastest else "none") + ".\n")
    if budget and any(v is not None for v in budget.values()):
        lines.append(f"Budget pick: {pick_under_budget(rows, **budget)['why']}.\n")
    return "\n".join(lines)


def load_scores(paths: list[Path]) -> list[dict[str, Any]]:
    """OpenAImer score files written by `compressor score CHECKPOINT -o FILE` (a directory: every *.json in it)."""
    scores = []
    files = [f for p in paths for f in (sorted(Path(p).glob("*.json")) if Path(p).is_dir() else [Path(p)])]
    for path in files:
        try:
            score = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CompressorError(f"score file {path} is not readable JSON ({exc})") from None
        if not isinstance(score, dict) or score.get("protocol") != "openaimer" or not score.get("checkpoint"):
            raise CompressorError(f"{path} is not a score of a checkpoint; write one with "
                                  "`compressor score CHECKPOINT --data imagefolder:PATH -o FILE`")
        scores.append(score)
    return scores


def scored_models(rows: Sequence[Row], scores: Sequence[Mapping[str, Any]]
                  ) -> tuple[dict[str, str], list[Mapping[str, Any]]]:
    """({checkpoint: the run's label}, the scores highest first); a score that matches no run is an error."""
    names = {str(rows[0]["baseline_checkpoint"]): "dense baseline"}
    names.update({str(r["checkpoint"]): label(r) for r in rows})
    unknown = [s["checkpoint"] for s in scores if s["checkpoint"] not in names]
    if unknown:
        raise CompressorError(f"score of {unknown[0]} matches no run in this report (scores are matched by "
                              "checkpoint path)")
    return names, sorted(scores, key=lambda s: -s["total_score"])


def openaimer_section(rows: Sequence[Row], scores: Sequence[Mapping[str, Any]]) -> str:
    """The competition score of every scored model beside its Pareto standing, and why the score misleads."""
    names, ranked = scored_models(rows, scores)
    fronts = {i for cost in ("deployable_bytes", "deployed_latency_ms") for i in pareto_front(rows, cost)}
    on_front = {str(r["checkpoint"]): i in fronts for i, r in enumerate(rows)}
    base = ranked[0]["baseline"]
    lines = ["## OpenAImer Track-2 score\n",
             f"The competition's score, 0.3·({base['size_mb']} MB / size) + 0.3·({base['latency_ms']} ms / latency) "
             f"+ 0.4·(accuracy / {base['accuracy_pct']} %), of each scored model, measured by `compressor score` "
             f"as its evaluator does (224 px ImageNet-normalized RGB through the exported `model_loader.py`, "
             f"batch 1, size of `model.pt` in MiB, mean latency of the first {ranked[0]['latency_runs']} images) "
             f"on {ranked[0]['images']} images. The protocol loads `model.pt` as a PyTorch model, so a pipeline "
             "ending in int8 is scored on its fp32 weights (its int8 ONNX file is not a valid submission). Highest "
             "score first.\n",
             "| model | top-1 here % | model.pt MiB | mean latency ms | score | on a Pareto front |",
             "|---|---:|---:|---:|---:|:---:|"]
    for s in ranked:
        front = {True: "yes", False: "no"}.get(on_front.get(s["checkpoint"]), "-")
        lines.append(f"| {names[s['checkpoint']]} | {s['accuracy']:.2f} | {s['model_size']:.3f} | "
                     f"{s['latency']:.2f} | {s['total_score']:.2f} | {front} |")
    top, best = ranked[0], max(ranked, key=lambda s: s["accuracy"])
    lines.append(f"\nThe top score goes to **{names[top['checkpoint']]}** ({top['accuracy']:.2f} %); "
                 f"the most accurate scored model, {names[best['checkpoint']]} ({best['accuracy']:.2f} %), scores "
                 f"{best['total_score']:.2f}. The size and latency terms are unbounded ratios while accuracy adds at "
                 "most 0.4·100/40 = 1.0, so the score is maximized by shrinking the file whatever the model "
                 "predicts: a file 100 times smaller than the baseline's earns 30 from its size term alone. The "
                 "competition's leaderboard was won at 0.82 % accuracy. Choose a model on the Pareto view above; "
                 "read this score beside it, never instead of it.\n")
    return "\n".join(lines)


def _csv_text(rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RunRow.csv_columns(), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _readme(rows: Sequence[Row], title: str, command: str | None, note: str | None,
            budget: dict[str, float | None] | None, scores: Sequence[Mapping[str, Any]],
            failed: list[tuple[str, str]], reference: str | None = None,
            diffs: Sequence[Difference] = (), layers: bool = False,
            diffs_before: Sequence[Difference] | None = None) -> str:
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
        "Top-1 and macro F1 are measured on the deployed artifact (for int8, the quantized ONNX file); ± is the "
        f"binomial standard error of top-1 on the {_count(first.get('samples'))} test images. "
        "Sparsity counts zero weights in conv and linear layers; MACs are dense MACs of the (possibly physically "
        "smaller) network; the deployable file is the smallest lossless artifact (see `compressor run` output).\n",
        *([f"## Over seeds\n\nRuns of one setting with different seeds: top-1 as mean ± sd over the runs (the run "
           f"count in brackets); a setting with one run shows ± its binomial standard error.\n\n{seeds_table(rows)}"]
          if any(group.n > 1 for group in seed_groups(rows)) else []),
        markdown_table(rows),
        *([load_note(rows)] if any(r.get("timed_under_load") for r in rows) else []),
        tradeoff_section(rows, budget),
        *([difference_section(diffs, reference)] if reference else []),
        *([difference_section(diffs_before, reference, before_recovery=True)]
          if reference and diffs_before is not None else []),
        *([f"## Cost\n\n{cost_table(rows)}"] if any(r.get("peak_rss_bytes") for r in rows) else []),
        *(["## Layers\n\n![% of each layer's weights non-zero, every run](layers.png)\n\nWhat each run kept of "
           "every conv and linear layer of the baseline (0 where a block was removed).\n"] if layers else []),
        *([openaimer_section(rows, scores)] if scores else []),
    ]
    if failed:
        parts.append(f"## Failed cells\n\n{len(failed)} sweep cells failed and are not in the tables:\n\n"
                     + "\n".join(f"- `{key}`: {error}" for key, error in failed) + "\n")
    if len(baselines) > 1:
        parts.append(f"Note: these runs come from {len(baselines)} different baselines; compare rows with care.\n")
    parts.append("## Regenerate\n")
    if command:
        parts.append(f"This summary:\n\n```\n{command}\n```\n")
    parts.append("Each run:\n\n```\n" + "\n".join(r["command"] or f"(no command recorded: {r['source']})"
                                                  for r in rows) + "\n```\n")
    parts.append(environment_section(rows, str(env["git_commit"])))
    return "\n".join(parts)


def environment_section(rows: Sequence[Row], summary_commit: str) -> str:
    """Where the runs were measured (each distinct machine with its run count) and at which commits."""
    machines = Counter(row.get("machine") or "not recorded" for row in rows)
    commits = sorted({row.get("git_commit") or "not recorded" for row in rows})
    lines = [f"- {machine} ({count} run{'s' if count > 1 else ''})" for machine, count in machines.most_common()]
    return ("## Environment\n\nThe runs were measured on:\n\n" + "\n".join(lines) + "\n\n"
            f"at git {', '.join(commits)}; this summary was written at git {summary_commit}.\n")


def write_summary(report_paths: list[Path], out_dir: Path, *, title: str | None = None,
                  command: str | None = None, note: str | None = None,
                  budget: dict[str, float | None] | None = None,
                  score_paths: list[Path] | None = None, reference: str | None = None,
                  before_recovery: bool = False) -> list[dict[str, Any]]:
    """Read run reports / sweep directories; write results.json, results.csv, tradeoffs.png, layers.png (and with
    a `reference` pipeline, difference.png), README.md and the fragments the docs include (runs.md, headline.md).
    With `before_recovery` (needs `reference`) the differences are also taken on the accuracy before recovery (the
    strategies alone; difference-before-recovery.png), for runs that recorded it.

    Returns the rows written (`RunRow.as_dict()` of each run, sorted by pipeline, parameters, fine-tuning, seeds)."""

    if not report_paths:
        raise CompressorError("compressor report needs at least one run report (a JSON file from `compressor run`) "
                              "or sweep directory")
    scores = load_scores(score_paths or [])
    collected = sorted(collect_runs(report_paths), key=lambda pair: (
        pair[0].pipeline, pair[0].params, pair[0].finetune_epochs, pair[0].baseline_seed or 0, pair[0].seed))
    runs = [run for run, _ in collected]
    rows = [run.as_dict() for run in runs]
    title = title or f"{runs[0].arch} on {runs[0].dataset}: strategies compared"
    results: dict[str, Any] = {"schema": RESULTS_SCHEMA, "rows": rows,
                               "seed_groups": [group.as_dict() for group in seed_groups(rows)]}
    diffs = reference_differences(rows, reference) if reference else []  # refused before any file is written
    diffs_before = None
    if before_recovery:
        if not reference:
            raise CompressorError("--before-recovery compares with a --reference pipeline; pass one (e.g. l1)")
        diffs_before = differences(rows, reference, "accuracy_before_recovery")
        if not diffs_before:
            raise CompressorError("--before-recovery: no run recorded its accuracy before recovery (runs record it "
                                  "when their recovery does something: BatchNorm recalibration or fine-tuning)")
    if reference:
        results["reference"] = reference
        results["differences"] = [d.as_dict() for d in diffs]
    if diffs_before is not None:
        results["differences_before_recovery"] = [d.as_dict() for d in diffs_before]
    write_json_atomic(results, out_dir / "results.json")
    write_atomic(out_dir / "results.csv", lambda tmp: tmp.write_text(_csv_text(rows)))
    plot_tradeoffs(rows, out_dir / "tradeoffs.png", title)
    if reference:
        plot_differences(diffs, reference, out_dir / "difference.png", title)
    if diffs_before is not None:
        plot_differences(diffs_before, f"{reference} (before recovery)", out_dir / "difference-before-recovery.png",
                         title)
    layered = [(f"{name} s{_seed_text(row)}", report.baseline.complexity["layers"],
                report.compressed.complexity["layers"])
               for row, name, (_, report) in zip(rows, key_names(rows), collected)
               if report.baseline.complexity and report.compressed.complexity]
    if layered:
        plot_layer_heatmap(layered, out_dir / "layers.png", title)
    readme = _readme(rows, title, command, note, budget, scores, failed_cells(report_paths), reference, diffs,
                     bool(layered), diffs_before)
    write_atomic(out_dir / "README.md", lambda tmp: tmp.write_text(readme))
    from compressor.report.fragments import write_fragments  # it imports this module

    write_fragments(results, out_dir, scores)
    return rows

