"""`compressor sweep | report | export | score`: commands over many runs, and the competition protocol.

They register on `compressor.cli.app`; `compressor.cli` imports this module, so every command is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compressor.cli import CacheOpt, DataDirOpt, QuietOpt, ThreadsOpt, _command_line, _names, app, err, out
from compressor.errors import CompressorError
from compressor.preflight import ensure_writable_dir, ensure_writable_file


@app.command("report")
def report_command(
    reports: Annotated[list[Path], typer.Argument(help="JSON reports written by `compressor run`, or sweep "
                                                        "directories (shards merge; a cell counts once)")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="directory for README.md, results.json, "
                                                              "results.csv and tradeoffs.png")],
    title: Annotated[str | None, typer.Option("--title", help="heading of the README")] = None,
    note: Annotated[str | None, typer.Option("--note", help="a Markdown paragraph under the heading")] = None,
    max_size_mb: Annotated[float | None, typer.Option("--max-size-mb", help="budget: deployable file at most "
                                                                            "this many MB")] = None,
    max_latency_ms: Annotated[float | None, typer.Option("--max-latency-ms", help="budget: deployed latency at "
                                                                                  "most this many ms")] = None,
    min_accuracy: Annotated[float | None, typer.Option("--min-accuracy", help="budget: top-1 at least this "
                                                                              "fraction, e.g. 0.9")] = None,
    openaimer: Annotated[list[Path] | None, typer.Option("--openaimer", help="score files (or directories of them) "
                                                         "from `compressor score CHECKPOINT -o FILE`, shown beside "
                                                         "the Pareto view")] = None,
) -> None:
    """Summarize runs: tables, accuracy-vs-size/latency plots with Pareto fronts, and a pick under a budget."""
    from compressor.pareto import pick_under_budget
    from compressor.summary import write_summary

    ensure_writable_dir(out_dir, "the report directory")
    for name, value in (("--max-size-mb", max_size_mb), ("--max-latency-ms", max_latency_ms)):
        if value is not None and not value > 0:
            raise CompressorError(f"{name} must be a positive number; got {value}")
    if min_accuracy is not None and not 0 < min_accuracy <= 1:
        raise CompressorError(f"--min-accuracy is a fraction in (0, 1], e.g. 0.9; got {min_accuracy}")
    budget = {"max_size_mb": max_size_mb, "max_latency_ms": max_latency_ms, "min_accuracy": min_accuracy}
    rows = write_summary(reports, out_dir, title=title, note=note, command=_command_line(), budget=budget,
                         score_paths=openaimer)
    out.print(f"{len(rows)} runs summarized in {out_dir / 'README.md'} (plots: {out_dir / 'tradeoffs.png'})")
    if any(v is not None for v in budget.values()):
        out.print(f"budget pick: {pick_under_budget(rows, **budget)['why']}")


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in _names(text))
    except ValueError:
        raise CompressorError(f"{option} takes comma-separated numbers; got {text!r}") from None


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in _names(text))
    except ValueError:
        raise CompressorError(f"{option} takes comma-separated integers; got {text!r}") from None


@app.command("sweep")
def sweep_command(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="sweep directory: cells/, runs/, results.jsonl")],
    strategies: Annotated[str | None, typer.Option("--strategies", help="comma-separated strategies or a+b "
                                                                        "pipelines")] = None,
    amounts: Annotated[str | None, typer.Option("--amounts", help="comma-separated amounts, for the pipelines that "
                                                                  "take one (default 0.5)")] = None,
    archs: Annotated[str | None, typer.Option("--archs", help="comma-separated architectures (default: the "
                                                              "run default, or the --model's)")] = None,
    datasets: Annotated[str | None, typer.Option("--datasets", help="comma-separated datasets")] = None,
    finetune_epochs: Annotated[str | None, typer.Option(
        "--finetune-epochs", help="comma-separated fine-tuning epochs, e.g. 0,0.25,1 (default 0)")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="comma-separated seeds (default 0)")] = None,
    grid: Annotated[Path | None, typer.Option("--grid", help="TOML file with the same keys (and [[pipeline]] "
                                                             "tables); options given here override it")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="i/n: run every n-th cell starting at i")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="rerun cells recorded as failed")] = False,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value for every cell")] = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="baseline checkpoint for every cell")] = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    backends: Annotated[str | None, typer.Option("--backends", help="latency backends (default: the run "
                                                                    "default)")] = None,
    threads: ThreadsOpt = None,
    compress: Annotated[str | None, typer.Option("--compress", help="also size each artifact compressed (default: "
                                                                    "the run default)")] = None,
    finetune_lr: Annotated[float | None, typer.Option("--finetune-lr", help="peak learning rate of fine-tuning "
                                                                            "(default: the run default)")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a grid of `compressor run` cells; finished cells are recorded atomically and skipped on rerun."""
    from compressor.sweep import Pipeline, SweepSpec, load_grid, parse_shard, run_sweep
    from compressor.train import whole_if_integral

    ensure_writable_dir(out_dir, "the sweep directory")
    spec = load_grid(grid) if grid is not None else SweepSpec(pipelines=[])
    if strategies is not None:
        spec.pipelines = [Pipeline(s) for s in _names(strategies)]
    if amounts is not None:
        spec.amounts = _floats(amounts, "--amounts")
    for name, value in (("archs", archs), ("datasets", datasets)):
        if value is not None:
            setattr(spec, name, _names(value))
    if finetune_epochs is not None:
        spec.finetune_epochs = tuple(whole_if_integral(e) for e in _floats(finetune_epochs, "--finetune-epochs"))
    if seeds is not None:
        spec.seeds = _ints(seeds, "--seeds")
    extra = []
    for name, value in (("--model", model), ("--data-dir", data_dir), ("--cache-dir", cache_dir),
                        ("--threads", threads), ("--backends", backends), ("--compress", compress),
                        ("--finetune-lr", finetune_lr)):
        if value is not None:
            extra += [name, str(value)]
    for item in param or []:
        extra += ["--param", item]
    spec.run_args = [*spec.run_args, *extra]
    counts = run_sweep(spec, out_dir, shard=parse_shard(shard), retry_failed=retry_failed, show_progress=not quiet,
                       console=err)
    out.print(f"{counts['cells']} cells in this shard: {counts['done']} run, {counts['failed']} failed, "
              f"{counts['skipped']} already recorded; rows in {out_dir / 'results.jsonl'}")
    if counts["failed"]:
        err.print(f"{counts['failed']} cells failed (reasons in {out_dir / 'cells'}); rerun with --retry-failed",
                  markup=False, highlight=False)
        raise typer.Exit(1)


@app.command("export")
def export_command(
    out_dir: Annotated[Path, typer.Argument(help="submission directory to write")],
    model: Annotated[Path, typer.Option("--model", "-m", help="classifier checkpoint to export")],
    export_format: Annotated[str, typer.Option("--format", help="submission format: openaimer")] = "openaimer",
    half: Annotated[bool, typer.Option("--half", help="store weights as fp16 (half the file; the loader computes "
                                                      "in fp32)")] = False,
    username: Annotated[str, typer.Option("--username", help="username field of metadata.json")] = "compressor",
) -> None:
    """Export a checkpoint as a competition submission (OpenAImer Track-2: model.pt, metadata.json, loader)."""
    from compressor.checkpoint import load_checkpoint
    from compressor.openaimer import export_submission

    ensure_writable_dir(out_dir, "the submission directory")
    if export_format != "openaimer":
        raise CompressorError(f"unknown --format {export_format!r}; supported: openaimer")
    paths = export_submission(load_checkpoint(model), out_dir, half=half, username=username)
    size = paths["model"].stat().st_size
    out.print(f"wrote {out_dir}: model.pt ({size / 2**20:.3f} MiB), metadata.json, model_loader.py")


@app.command("score")
def score_command(
    submission: Annotated[Path, typer.Argument(help="submission directory (from `compressor export`), or a "
                                                    "checkpoint to export to a temporary one and score")],
    data: Annotated[str, typer.Option("--data", "-d", help="imagefolder:PATH, the evaluation images")],
    protocol: Annotated[str, typer.Option("--protocol", help="scoring protocol: openaimer")] = "openaimer",
    baseline_size: Annotated[float, typer.Option("--baseline-size", help="baseline size in MB")] = 44.7,
    baseline_latency: Annotated[float, typer.Option("--baseline-latency", help="baseline latency in ms")] = 30.0,
    baseline_accuracy: Annotated[float, typer.Option("--baseline-accuracy", help="baseline accuracy in %")] = 40.0,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON file to write")] = None,
    half: Annotated[bool, typer.Option("--half", help="when scoring a checkpoint, export fp16 weights")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Compute a submission's size, latency, accuracy and score exactly as the competition's evaluator does."""
    from compressor.fileio import write_json_atomic
    from compressor.openaimer import Baseline, score_checkpoint, score_submission

    if output is not None:
        ensure_writable_file(output, "the score file")
    if protocol != "openaimer":
        raise CompressorError(f"unknown --protocol {protocol!r}; supported: openaimer")
    if not data.startswith("imagefolder:"):
        raise CompressorError(f"--data must be imagefolder:PATH for the openaimer protocol; got {data!r}")
    if min(baseline_size, baseline_latency, baseline_accuracy) <= 0:
        raise CompressorError("baseline size, latency and accuracy must be positive")
    reference, data_dir = Baseline(baseline_size, baseline_latency, baseline_accuracy), Path(data.split(":", 1)[1])
    if submission.is_file():
        result = score_checkpoint(submission, data_dir, reference, half=half, show_progress=not quiet)
    else:
        result = score_submission(submission, data_dir, reference, show_progress=not quiet)
    result["command"] = _command_line()
    out.print(f"size {result['model_size']:.3f} MB, latency {result['latency']:.2f} ms (mean of "
              f"{result['latency_runs']}; median {result['latency_median_ms']:.2f}), "
              f"accuracy {result['accuracy']:.2f} % "
              f"on {result['images']} images -> score {result['total_score']:.3f} (size {result['size_score']:.2f}, "
              f"latency {result['latency_score']:.2f}, accuracy {result['accuracy_score']:.2f})")
    if result["class_mismatch"]:
        err.print("[yellow]warning: the folder's class names differ from the model's; labels are matched by sorted "
                  "folder order, as the evaluator does[/yellow]")
    if output is not None:
        write_json_atomic(result, output)
