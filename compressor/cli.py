"""`compressor` command line: a thin typer layer over the Python API."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from compressor.errors import CompressorError
from compressor.measure import MeasureConfig
from compressor.preflight import ensure_writable_dir, ensure_writable_file

app = typer.Typer(help="Compress image classifiers and measure what each recipe costs and buys.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
out = Console()
err = Console(stderr=True)

DataOpt = Annotated[str | None, typer.Option("--data", "-d", help="digits | fashion-mnist | cifar10 | cifar100 | "
                                                               "imagefolder:PATH (default digits)")]
ArchOpt = Annotated[str | None, typer.Option("--arch", "-a", help="architecture (default resnet18); see `compressor list`")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="where to look for dataset files first "
                                                                    "(also $COMPRESSOR_DATA)")]
CacheOpt = Annotated[Path | None, typer.Option("--cache-dir", help="baseline/download cache (default "
                                                                   "~/.cache/compressor, or $COMPRESSOR_CACHE)")]
SizeOpt = Annotated[int | None, typer.Option("--input-size", help="input resolution in px (default: native size, "
                                                                  "at least the architecture's minimum)")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="baseline training epochs (default per dataset)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed for training and strategies")]
PretrainedOpt = Annotated[bool, typer.Option("--pretrained", help="start the baseline from torchvision's ImageNet "
                                                                  "weights (needs network or a warm cache)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
BackendsOpt = Annotated[str, typer.Option("--backends", help="latency backends, comma-separated: torch, "
                                                             "onnxruntime, cuda")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="batch size for latency")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for torch and ONNX Runtime "
                                                                  "(default: torch's)")]
CompressOpt = Annotated[str, typer.Option("--compress", help="also size each artifact compressed: zip, xz "
                                                             "(comma-separated) or none")]
ArtifactsOpt = Annotated[Path | None, typer.Option("--artifacts", help="keep the measured files (checkpoint "
                                                                       "variants, ONNX, zip/xz) in this directory")]


_argv: list[str] | None = None


def _command_line() -> str:
    """The command being run, as a shell line for reports (the arguments given to `main`, else sys.argv)."""
    return shlex.join(["compressor", *(_argv if _argv is not None else sys.argv[1:])])


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")


def _measure_config(backends: str, batch_size: int, threads: int | None, compress: str,
                    input_size: int | None = None, repeats: int = 1) -> MeasureConfig:
    return MeasureConfig(backends=_names(backends), batch_size=batch_size, input_size=input_size, threads=threads,
                         repeats=repeats, compressions=_names(compress))


@app.command("run")
def run_command(
    strategy: Annotated[list[str], typer.Option("--strategy", "-s", help="strategy name; repeat or join with + "
                                                                          "for a pipeline")],
    amount: Annotated[str | None, typer.Option("--amount", help="amount for every step that takes one, "
                                                                "in [0, 1)")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="key=value or strategy.key=value; "
                                                                          "repeatable")] = None,
    arch: ArchOpt = None,
    data: DataOpt = None,
    model: Annotated[Path | None, typer.Option("--model", "-m", help="baseline checkpoint (default: train or "
                                                                     "reuse a cached one)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON report path (default runs/NAME.json; "
                                                                       "the checkpoint goes beside it as .pt)")] = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    input_size: SizeOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = 0,
    pretrained: PretrainedOpt = False,
    finetune_epochs: Annotated[float, typer.Option("--finetune-epochs", help="recovery fine-tuning epochs after "
                                                   "the pipeline, fractions allowed (pruned weights stay zero)")] = 0,
    finetune_lr: Annotated[float, typer.Option("--finetune-lr", help="peak learning rate of fine-tuning")] = 0.01,
    bn_recalibrate: Annotated[bool, typer.Option("--bn-recalibrate", help="re-estimate BatchNorm statistics on "
                                                                          "training images after the pipeline")] = False,
    backends: BackendsOpt = "torch,onnxruntime",
    batch_size: BatchOpt = 1,
    threads: ThreadsOpt = None,
    compress: CompressOpt = "zip,xz",
    artifacts: ArtifactsOpt = None,
    quiet: QuietOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check options, data, checkpoint, strategy fit and "
                                                            "output space, then stop")] = False,
) -> None:
    """Compress a baseline with one strategy or a pipeline, measure both, print the table and write the report."""
    import math

    from compressor.pipeline import RunConfig, parse_steps, plan_run, run
    from compressor.report import run_table, sensitivity_table
    from compressor.train import whole_if_integral

    measure = _measure_config(backends, batch_size, threads, compress)
    if not (math.isfinite(finetune_epochs) and finetune_epochs >= 0):
        raise CompressorError(f"--finetune-epochs must be a finite number ≥ 0; got {finetune_epochs:g}")
    if not (math.isfinite(finetune_lr) and finetune_lr > 0):
        raise CompressorError(f"--finetune-lr must be a finite number > 0; got {finetune_lr:g}")
    steps = parse_steps(strategy, amount, param)
    config = RunConfig(steps=steps, arch=arch, dataset=data, model=model, data_dir=data_dir, cache_dir=cache_dir,
                       input_size=input_size, epochs=epochs, seed=seed, pretrained=pretrained, output=output,
                       finetune_epochs=whole_if_integral(finetune_epochs), finetune_lr=finetune_lr,
                       bn_recalibrate=bn_recalibrate,
                       measure=measure, artifacts_dir=artifacts, show_progress=not quiet,
                       command=_command_line())
    if dry_run:
        plan = plan_run(config)
        baseline = config.model or "the cached baseline (trained first if missing)"
        out.print(f"dry run OK: {'+'.join(s.strategy for s in steps)} on {plan.arch} / {plan.dataset.info.name} "
                  f"from {baseline}; would write {plan.report_path} and {plan.checkpoint_path}")
        return
    result = run(config, console=err)
    for step in result.report["steps"]:
        if "sensitivity" in step["record"]:
            out.print(sensitivity_table(step["record"]))
    out.print(run_table(result.report))
    for name, plot in result.report["plots"].items():
        out.print(f"plot ({name}): {plot}")
    out.print(f"report: {result.report_path}\ncheckpoint: {result.checkpoint_path}")


@app.command("bench")
def bench_command(
    model: Annotated[Path | None, typer.Option("--model", "-m", help="checkpoint to measure (accuracy on its "
                                                                     "dataset's test split)")] = None,
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="instead of --model: a freshly built "
                                                                  "architecture (no accuracy)")] = None,
    num_classes: Annotated[int, typer.Option("--num-classes", help="classes of a --arch model")] = 1000,
    in_channels: Annotated[int, typer.Option("--in-channels", help="input channels of a --arch model")] = 3,
    backends: BackendsOpt = "torch,onnxruntime",
    input_size: Annotated[int | None, typer.Option("--input-size", help="input px for latency, MACs and ONNX "
                                                                        "(default: the model's; 224 for --arch)")] = None,
    batch_size: BatchOpt = 1,
    threads: ThreadsOpt = None,
    repeats: Annotated[int, typer.Option("--repeats", help="back-to-back latency measurements, to show their "
                                                           "spread")] = 2,
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON file to write")] = None,
    compress: CompressOpt = "zip,xz",
    artifacts: ArtifactsOpt = None,
    layers: Annotated[int, typer.Option("--layers", help="largest layers to show in the complexity table")] = 10,
) -> None:
    """Measure one model: file sizes, latency per backend, complexity per layer, accuracy under torch and ONNX."""
    from compressor.bench import bench
    from compressor.fileio import write_json_atomic
    from compressor.report import accuracy_table, complexity_table, latency_table, size_table

    if output is not None:
        ensure_writable_file(output, "the report")
    if (model is None) == (arch is None):
        raise CompressorError("bench needs exactly one of --model CKPT or --arch NAME")
    config = _measure_config(backends, batch_size, threads, compress, input_size, repeats)
    result = bench(model=model, arch=arch, num_classes=num_classes, in_channels=in_channels, dataset=data,
                   data_dir=data_dir, cache_dir=cache_dir, config=config, artifacts_dir=artifacts,
                   command=_command_line())
    measured = result["measurements"]
    for table in (size_table(measured["size"]), latency_table(measured["latency"]),
                  accuracy_table(measured["evaluation"]), complexity_table(measured["complexity"], layers)):
        if table is not None:
            out.print(table)
    if "skipped" in measured["evaluation"]:
        out.print(f"accuracy: skipped ({measured['evaluation']['skipped']})")
    if output is not None:
        write_json_atomic(result, output)
        out.print(f"report: {output}")


@app.command("train")
def train_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the checkpoint")],
    arch: ArchOpt = None,
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    input_size: SizeOpt = None,
    epochs: EpochsOpt = None,
    lr: Annotated[float, typer.Option("--lr", help="peak learning rate of the one-cycle schedule")] = 0.05,
    seed: SeedOpt = 0,
    pretrained: PretrainedOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train a baseline classifier and save it as a checkpoint that `run --model` accepts."""
    from compressor.baseline import BaselineRequest, train_baseline
    from compressor.checkpoint import save_checkpoint
    from compressor.data import load_dataset
    from compressor.measure.accuracy import evaluate, torch_forward

    ensure_writable_file(output, "the checkpoint")
    if not lr > 0:
        raise CompressorError(f"--lr must be a positive number; got {lr}")
    dataset = load_dataset(data or "digits", data_dir=data_dir, cache_dir=cache_dir)
    request = BaselineRequest(arch=arch or "resnet18", input_size=input_size, epochs=epochs, lr=lr, seed=seed,
                              pretrained=pretrained)
    checkpoint = train_baseline(request, dataset, show_progress=not quiet)
    metrics = evaluate(torch_forward(checkpoint.model), dataset.test, checkpoint.spec.input_size)
    checkpoint.history[-1]["test"] = metrics
    save_checkpoint(checkpoint, output)
    out.print(f"test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1_macro']:.4f} "
              f"on {metrics['samples']} images; saved {output}")


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


@app.command("list")
def list_command() -> None:
    """List strategies (with parameters and defaults), architectures and datasets."""
    from compressor.data import DATASET_NAMES
    from compressor.models import list_archs
    from compressor.registry import list_strategies, plugin_errors

    table = Table(title="strategies")
    for column in ("strategy", "parameter", "type", "default", "description"):
        table.add_column(column, style="bold" if column == "strategy" else None)
    for info in list_strategies():
        table.add_row(info.name, "", "", "", info.description, end_section=not info.params)
        for i, p in enumerate(info.params):
            table.add_row("", p.name, p.type_name, repr(p.default), p.help, end_section=i == len(info.params) - 1)
    out.print(table)
    for name, reason in plugin_errors().items():
        err.print(f"[yellow]plugin {name!r} failed to load: {reason}[/yellow]")
    out.print(f"architectures: {', '.join(list_archs())}")
    out.print(f"datasets: {', '.join(DATASET_NAMES)}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors end in one line on stderr and exit code 2, never a traceback."""
    global _argv
    _argv = list(argv) if argv is not None else None
    run_app(app, "compressor", argv)


def run_app(typer_app: typer.Typer, prog_name: str, argv: list[str] | None) -> None:
    """Run a typer app; CompressorError and usage errors become one line on stderr and exit code 2."""
    command = typer.main.get_command(typer_app)
    try:
        code = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except CompressorError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err.print("aborted", markup=False)
        sys.exit(130)
    except typer.TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
