"""`compressor sweep | report`: grids of runs, and summaries of many runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from compressor._util.preflight import ensure_writable_dir
from compressor.cli.options import (
    DEVICE_HELP,
    BatchSizesOpt,
    CacheOpt,
    DataDirOpt,
    DeploySizeOpt,
    JsonOpt,
    LegacyOutOpt,
    QuietOpt,
    ThreadCountsOpt,
    ThreadsOpt,
    check_device,
    command_line,
    err,
    floats,
    ints,
    names,
    out,
    output_path,
    plain_lines,
    print_json,
)
from compressor.errors import CompressorError

if TYPE_CHECKING:
    from compressor.sweep import SweepSpec


def report_command(
    reports: Annotated[list[Path], typer.Argument(help="JSON reports written by `compressor run`, or sweep "
                                                        "directories (shards merge; a cell counts once)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="directory for README.md, results.json, "
                                                                       "results.csv and tradeoffs.png "
                                                                       "[required]")] = None,
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
    reference: Annotated[str | None, typer.Option(
        "--reference", help="a pipeline (e.g. l1): every other method's top-1 minus its at the same amount and "
                            "budget, paired by seed, in a table and difference.png")] = None,
    before_recovery: Annotated[bool, typer.Option(
        "--before-recovery", help="with --reference: also compare the accuracy the strategies reached alone, before "
                                  "the runs' BatchNorm recalibration or fine-tuning (runs that recorded it)")] = False,
    legacy_out: LegacyOutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarize runs: tables, accuracy-vs-size/latency plots with Pareto fronts, and a pick under a budget."""
    from compressor.report.pareto import pick_under_budget
    from compressor.report.summary import write_summary

    out_dir = output_path(output, legacy_out)
    ensure_writable_dir(out_dir, "the report directory")
    for name, value in (("--max-size-mb", max_size_mb), ("--max-latency-ms", max_latency_ms)):
        if value is not None and not value > 0:
            raise CompressorError(f"{name} must be a positive number; got {value}")
    if min_accuracy is not None and not 0 < min_accuracy <= 1:
        raise CompressorError(f"--min-accuracy is a fraction in (0, 1], e.g. 0.9; got {min_accuracy}")
    budget = {"max_size_mb": max_size_mb, "max_latency_ms": max_latency_ms, "min_accuracy": min_accuracy}
    rows = write_summary(reports, out_dir, title=title, note=note, command=command_line(), budget=budget,
                         reference=reference, before_recovery=before_recovery,
                         score_paths=openaimer)
    pick = pick_under_budget(rows, **budget) if any(v is not None for v in budget.values()) else None
    if as_json:
        print_json({"report": str(out_dir / "README.md"), "runs": rows, "budget_pick": pick})
        return
    out.print(f"{len(rows)} runs summarized in {out_dir / 'README.md'} (plots: {out_dir / 'tradeoffs.png'})")
    if pick is not None:
        out.print(f"budget pick: {pick['why']}")


def sweep_command(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="sweep directory: cells/, runs/, "
                                                                       "results.jsonl [required]")] = None,
    strategies: Annotated[str | None, typer.Option("--strategies", help="comma-separated strategies or a+b "
                                                                        "pipelines")] = None,
    amounts: Annotated[str | None, typer.Option("--amounts", help="comma-separated amounts, for the pipelines that "
                                                                  "take one (default 0.5)")] = None,
    archs: Annotated[str | None, typer.Option("--archs", help="comma-separated architectures (default: the "
                                                              "run default, or the --model's)")] = None,
    datasets: Annotated[str | None, typer.Option("--datasets", help="comma-separated datasets")] = None,
    finetune_epochs: Annotated[str | None, typer.Option(
        "--finetune-epochs", help="comma-separated fine-tuning epochs, e.g. 0,0.25,1 (default 0)")] = None,
    seeds: Annotated[str | None, typer.Option("--seeds", help="comma-separated seeds of strategies, calibration "
                                                              "and fine-tuning (default 0)")] = None,
    baseline_seeds: Annotated[str | None, typer.Option(
        "--baseline-seeds", help="comma-separated seeds of the cached baseline's training, crossed with --seeds "
                                 "(default: each cell's --seeds value)")] = None,
    grid: Annotated[Path | None, typer.Option("--grid", help="TOML file with the same keys (and [[pipeline]] "
                                                             "tables); options given here override it")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="i/n: run every n-th cell starting at i")] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="rerun cells recorded as failed")] = False,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value for every cell")] = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="baseline checkpoint for every cell")] = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    device: Annotated[str | None, typer.Option("--device", help=f"{DEVICE_HELP}; passed to every cell "
                                                               "(default: the run default, auto)")] = None,
    backends: Annotated[str | None, typer.Option("--backends", help="latency backends (default: the run "
                                                                    "default)")] = None,
    threads: ThreadsOpt = None,
    deploy_size: DeploySizeOpt = None,
    batch_sizes: BatchSizesOpt = None,
    thread_counts: ThreadCountsOpt = None,
    compress: Annotated[str | None, typer.Option("--compress", help="also size each artifact compressed (default: "
                                                                    "the run default)")] = None,
    finetune_lr: Annotated[float | None, typer.Option("--finetune-lr", help="peak learning rate of fine-tuning "
                                                                            "(default: the run default)")] = None,
    run_arg: Annotated[list[str] | None, typer.Option("--run-arg", help="one more `compressor run` argument for "
                                                      "every cell, e.g. --run-arg=--distill (repeatable)")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="cells at once on this machine, each with its share of "
                                                           "the CPU threads (and its own GPU when several are "
                                                           "visible)")] = 1,
    timing: Annotated[str, typer.Option("--timing", help="with --jobs > 1: serial (a cell times only while no other "
                                                         "computes) or parallel (timed beside the others, recorded "
                                                         "as timed under load)")] = "serial",
    cell_timeout: Annotated[float | None, typer.Option("--cell-timeout", help="seconds; a cell still running then "
                                                                              "is killed and recorded as failed")
                            ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the cells and check every cell's arguments "
                                                            "(as `run --dry-run` does), then stop")] = False,
    executor: Annotated[str, typer.Option("--executor", help="local (this machine), slurm (one job per cell, "
                                                             "through submitit) or submitit-local")] = "local",
    executor_param: Annotated[list[str] | None, typer.Option(
        "--executor-param", help="KEY=VALUE for submitit's update_parameters, e.g. slurm_partition=gpu or "
                                 "gpus_per_node=1 (repeatable)")] = None,
    quiet: QuietOpt = False,
    legacy_out: LegacyOutOpt = None,
) -> None:
    """Run a grid of `compressor run` cells; finished cells are recorded atomically and skipped on rerun.

    Exit code 1 when a cell failed (its reason is in DIR/cells); rerun with --retry-failed.
    """
    from compressor.models.training import whole_if_integral
    from compressor.sweep import (
        Pipeline,
        SweepSpec,
        check_cell_timeout,
        load_grid,
        override_run_args,
        parse_shard,
        run_sweep,
    )
    from compressor.sweep.submitted import EXECUTORS, make_executor, submit_sweep

    out_dir = output_path(output, legacy_out)
    ensure_writable_dir(out_dir, "the sweep directory")
    if device is not None:
        check_device(device)
    spec = load_grid(grid) if grid is not None else SweepSpec(pipelines=[])
    if strategies is not None:
        spec.pipelines = [Pipeline(s) for s in names(strategies)]
    if amounts is not None:
        spec.amounts = floats(amounts, "--amounts")
    for name, value in (("archs", archs), ("datasets", datasets)):
        if value is not None:
            setattr(spec, name, names(value))
    if finetune_epochs is not None:
        spec.finetune_epochs = tuple(whole_if_integral(e) for e in floats(finetune_epochs, "--finetune-epochs"))
    if seeds is not None:
        spec.seeds = ints(seeds, "--seeds")
    if baseline_seeds is not None:
        if model is not None:
            raise CompressorError("--baseline-seeds picks cached baselines; it cannot be used with --model")
        spec.baseline_seeds = ints(baseline_seeds, "--baseline-seeds")
    extra = []
    for name, value in (("--model", model), ("--data-dir", data_dir), ("--cache-dir", cache_dir),
                        ("--device", device), ("--threads", threads), ("--backends", backends),
                        ("--compress", compress), ("--finetune-lr", finetune_lr), ("--deploy-size", deploy_size),
                        ("--batch-sizes", batch_sizes), ("--thread-counts", thread_counts)):
        if value is not None:
            extra += [name, str(value)]
    params = [token for item in param or [] for token in ("--param", item)]
    spec.run_args = [*override_run_args(spec.run_args, extra), *params, *(run_arg or [])]
    if cell_timeout is not None:
        spec.cell_timeout = check_cell_timeout(cell_timeout)
    if executor not in EXECUTORS:
        raise CompressorError(f"--executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    if executor == "local" and executor_param:
        raise CompressorError("--executor-param is for --executor slurm or submitit-local")
    if executor != "local" and jobs != 1:
        raise CompressorError(f"--jobs is for --executor local; with {executor} every cell is its own job "
                              "(bound how many run at once with --executor-param slurm_array_parallelism=N)")
    if dry_run:
        dry_run_sweep(spec, out_dir, parse_shard(shard), retry_failed)
        return
    if executor == "local":
        counts = run_sweep(spec, out_dir, shard=parse_shard(shard), retry_failed=retry_failed, jobs=jobs,
                           timing=timing, show_progress=not quiet, console=err)  # type: ignore[arg-type]
    else:
        params = dict(_key_value(item) for item in executor_param or [])
        counts = submit_sweep(spec, out_dir, make_executor(executor, out_dir / "submitit", params, spec.cell_timeout),
                              shard=parse_shard(shard), retry_failed=retry_failed, show_progress=not quiet,
                              console=err)
    out.print(f"{counts['cells']} cells in this shard: {counts['done']} run, {counts['failed']} failed, "
              f"{counts['skipped']} already recorded; rows in {out_dir / 'results.jsonl'}")
    if counts["failed"]:
        err.print(f"{counts['failed']} cells failed (reasons in {out_dir / 'cells'}); rerun with --retry-failed",
                  markup=False, highlight=False)
        raise typer.Exit(1)


def _key_value(item: str) -> tuple[str, int | float | str]:
    """`KEY=VALUE` of --executor-param, the value as an int or float where it reads as one."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise CompressorError(f"--executor-param takes KEY=VALUE; got {item!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def dry_run_sweep(spec: SweepSpec, out_dir: Path, shard: tuple[int, int], retry_failed: bool) -> None:
    """Print every cell of this shard (recorded or to run, with its `compressor run` command) after checking each
    one's arguments as `run --dry-run` does; every bad cell is named, and then the exit code is 2. Nothing is
    written to the sweep directory."""
    import shlex
    import tempfile

    import click

    from compressor.cli import app
    from compressor.sweep import cell_command, pending_cells, sweep_bn_flag, validate, write_recovery_file

    validate(spec)
    cells, todo = pending_cells(spec, out_dir, shard, retry_failed)
    bn_flag, waiting = sweep_bn_flag(spec), {cell.key for cell in todo}
    command = typer.main.get_command(app)
    problems, lines = [], []
    quiet_before, out.quiet = out.quiet, True  # each cell's own "dry run OK" line
    try:
        with tempfile.TemporaryDirectory(prefix="compressor-dry-run-") as scratch:
            # the [recovery] table as the sweep would write it, but outside the sweep directory
            checked = write_recovery_file(spec.recovery, Path(scratch) / "recovery.toml") if spec.recovery else None
            for cell in cells:
                report = out_dir / "runs" / f"{cell.key}.json"
                try:
                    args = cell_command(cell, spec, report, bn_flag, checked)[3:]
                    command.main(args=[*args, "--dry-run"], prog_name="compressor", standalone_mode=False)
                except (CompressorError, click.ClickException) as exc:
                    message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
                    problems.append(f"{cell.key}: {message}")
                shown = cell_command(cell, spec, report, bn_flag, out_dir / "recovery.toml" if checked else None)
                status = "to run" if cell.key in waiting else "recorded"
                lines.append(f"{cell.key}\t{status}\tcompressor {shlex.join(shown[3:])}")
    finally:
        out.quiet = quiet_before
    plain_lines(lines)
    if problems:
        raise CompressorError(f"{len(problems)} of {len(cells)} cells would fail: " + "; ".join(problems))
    out.print(f"dry run OK: {len(cells)} cells in this shard, {len(todo)} to run, {len(cells) - len(todo)} "
              "recorded; every cell's arguments check out", markup=False, highlight=False)
