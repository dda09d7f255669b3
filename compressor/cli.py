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
from compressor.preflight import ensure_writable_file

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


from compressor import cli_results  # noqa: E402,F401  (registers sweep, report, export, score)


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
