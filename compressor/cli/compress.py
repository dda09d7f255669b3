"""`compressor run | bench | train`: compress one model, measure one model, train a baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from compressor._util.preflight import ensure_writable_file
from compressor._util.timing_gate import join_timing_gate
from compressor.cli.options import (
    ArchOpt,
    ArtifactsOpt,
    BackendsOpt,
    BatchOpt,
    BatchSizesOpt,
    CacheOpt,
    CompressOpt,
    DataDirOpt,
    DataOpt,
    DeploySizeOpt,
    DeviceOpt,
    EpochsOpt,
    JsonOpt,
    PrecisionOpt,
    PretrainedOpt,
    ProcessesOpt,
    QuietOpt,
    RecipeOpt,
    SeedOpt,
    SizeOpt,
    ThreadCountsOpt,
    ThreadsOpt,
    check_device,
    check_precision,
    command_line,
    err,
    in_panels,
    names,
    out,
    print_json,
)
from compressor.errors import CompressorError

if TYPE_CHECKING:
    from compressor.measure import MeasureConfig


def _measure_config(backends: str, batch_size: int, threads: int | None, compress: str,
                    input_size: int | None = None, repeats: int = 1, processes: int = 1) -> MeasureConfig:
    from compressor.measure import MeasureConfig

    return MeasureConfig(backends=names(backends), batch_size=batch_size, input_size=input_size, threads=threads,
                         repeats=repeats, processes=processes, compressions=names(compress))


def _grid_options(deploy_size: int | None, batch_sizes: str | None, thread_counts: str | None) -> dict[str, Any]:
    """RunConfig's grid fields from the CLI options, each checked (one-line usage errors)."""
    from compressor.measure.grid import parse_int_list

    if deploy_size is not None and deploy_size < 1:
        raise CompressorError(f"--deploy-size must be an integer ≥ 1 (px); got {deploy_size}")
    return {"deploy_size": deploy_size,
            "batch_sizes": parse_int_list(batch_sizes, "--batch-sizes") if batch_sizes else (),
            "thread_counts": parse_int_list(thread_counts, "--thread-counts") if thread_counts else ()}


@in_panels({
    "Model and data": ("arch", "data", "model", "data_dir", "cache_dir", "input_size", "epochs", "seed",
                       "baseline_seed", "pretrained", "recipe", "precision", "device"),
    "Strategy": ("strategy", "amount", "param"),
    "Recovery": ("config_file", "finetune_epochs", "finetune_lr", "bn_recalibrate", "distill", "distill_alpha",
                 "distill_temperature", "label_smoothing", "freeze_bn", "refit_head", "recovery_recipe",
                 "prune_steps"),
    "Measurement": ("backends", "batch_size", "threads", "processes", "deploy_size", "batch_sizes", "thread_counts",
                    "compress"),
    "Output": ("output", "artifacts", "quiet", "as_json", "dry_run"),
})
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
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    input_size: SizeOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = 0,
    baseline_seed: Annotated[int | None, typer.Option(
        "--baseline-seed", help="seed of the cached baseline's training, apart from --seed (strategies, "
                                "calibration, fine-tuning); default: --seed")] = None,
    pretrained: PretrainedOpt = False,
    finetune_epochs: Annotated[float | None, typer.Option(
        "--finetune-epochs", help="recovery fine-tuning epochs after the pipeline, fractions allowed (pruned weights "
                                  "stay zero; default 0)")] = None,
    finetune_lr: Annotated[float | None, typer.Option("--finetune-lr", help="peak learning rate of fine-tuning "
                                                      "(default: 0.2 x the baseline's, or 0.01)")] = None,
    bn_recalibrate: Annotated[bool | None, typer.Option(
        "--bn-recalibrate/--no-bn-recalibrate",
        help="re-estimate BatchNorm statistics on training images after the pipeline (default: when a step "
             "recommends it: channels, blocks, layer-sensitive, obd, woodfisher, fishleg)")] = None,
    distill: Annotated[bool | None, typer.Option(
        "--distill/--no-distill", help="fine-tune by distilling the uncompressed model (needs --finetune-epochs "
                                       "> 0; default: the recovery recipe's)")] = None,
    distill_alpha: Annotated[float | None, typer.Option("--distill-alpha", help="weight of the distillation term, in "
                                                        "[0, 1] (the rest is cross-entropy; default: the recovery "
                                                        "recipe's, 0.5 for standard)")] = None,
    distill_temperature: Annotated[float | None, typer.Option(
        "--distill-temperature", help="softmax temperature of distillation, > 0 (default 4)")] = None,
    label_smoothing: Annotated[float | None, typer.Option(
        "--label-smoothing", help="label smoothing of fine-tuning's cross-entropy, in [0, 1) (default 0)")] = None,
    freeze_bn: Annotated[bool | None, typer.Option(
        "--freeze-bn/--no-freeze-bn", help="fine-tuning keeps BatchNorm running statistics (default: the recovery "
                                           "recipe's)")] = None,
    refit_head: Annotated[bool | None, typer.Option(
        "--refit-head/--no-refit-head", help="last step of recovery: fit the final linear layer again on the "
                                             "penultimate features of the training images (default: the recovery "
                                             "recipe's)")] = None,
    recovery_recipe: Annotated[str | None, typer.Option(
        "--recovery-recipe", help="fine-tuning defaults: auto (frozen-encoder for SupCon linear classifiers, else "
                                  "standard) | standard | frozen-encoder (default auto)")] = None,
    prune_steps: Annotated[int | None, typer.Option(
        "--prune-steps", help="gradual pruning: reach the amounts in N rounds (cubic schedule), the fine-tuning "
                              "epochs split between them (default 1)")] = None,
    config_file: Annotated[Path | None, typer.Option(
        "--config", help="TOML file whose [recovery] table sets any recovery option by its Python name "
                         "(finetune_epochs = 1, distill = true, ...); options given on the command line win")] = None,
    recipe: RecipeOpt = "standard",
    precision: PrecisionOpt = None,
    device: DeviceOpt = "auto",
    backends: BackendsOpt = "torch,onnxruntime",
    batch_size: BatchOpt = 1,
    threads: ThreadsOpt = None,
    processes: ProcessesOpt = 1,
    deploy_size: DeploySizeOpt = None,
    batch_sizes: BatchSizesOpt = None,
    thread_counts: ThreadCountsOpt = None,
    compress: CompressOpt = "zip,xz",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON report path (default runs/NAME.json; "
                                                                       "the checkpoint goes beside it as .pt)")] = None,
    artifacts: ArtifactsOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check options, data, checkpoint, strategy fit and "
                                                            "output space, then stop")] = False,
) -> None:
    """Compress a baseline with one strategy or a pipeline, measure both, print the table and write the report."""
    import dataclasses

    from compressor.models.training import whole_if_integral
    from compressor.pipeline import RunConfig, plan_run, run
    from compressor.recovery.config import RecoveryConfig, read_recovery_file
    from compressor.report import deployment_table, run_table, sensitivity_table
    from compressor.strategies.steps import parse_steps

    join_timing_gate()  # in a `sweep --timing serial`: compute beside other cells, time alone

    check_device(device)
    measure = _measure_config(backends, batch_size, threads, compress, processes=processes)
    grid = _grid_options(deploy_size, batch_sizes, thread_counts)
    check_precision(precision)
    if baseline_seed is not None and model is not None:
        raise CompressorError("--baseline-seed picks the cached baseline to train or reuse; with --model the "
                              "baseline is that checkpoint (drop one of the two)")
    given = {"finetune_epochs": finetune_epochs, "finetune_lr": finetune_lr, "bn_recalibrate": bn_recalibrate,
             "distill": distill, "distill_alpha": distill_alpha, "distill_temperature": distill_temperature,
             "label_smoothing": label_smoothing, "prune_steps": prune_steps, "freeze_batchnorm": freeze_bn,
             "refit_head": refit_head, "recovery_recipe": recovery_recipe}
    recovery = RecoveryConfig.from_mapping(
        {**read_recovery_file(config_file), **{key: value for key, value in given.items() if value is not None}},
        str(config_file) if config_file else "recovery")
    recovery = dataclasses.replace(recovery, finetune_epochs=whole_if_integral(recovery.finetune_epochs))
    steps = parse_steps(strategy, amount, param)
    config = RunConfig(steps=steps, arch=arch, dataset=data, model=model, data_dir=data_dir, cache_dir=cache_dir,
                       input_size=input_size, epochs=epochs, seed=seed, baseline_seed=baseline_seed,
                       pretrained=pretrained, output=output, recovery=recovery, device=device, recipe=recipe,
                       precision=precision, measure=measure, artifacts_dir=artifacts, show_progress=not quiet,
                       command=command_line(), **grid)
    if dry_run:
        plan = plan_run(config)
        baseline = config.model or "the cached baseline (trained first if missing)"
        out.print(f"dry run OK: {'+'.join(s.strategy for s in steps)} on {plan.arch} / {plan.dataset.info.name} "
                  f"from {baseline}; would write {plan.report_path} and {plan.checkpoint_path}")
        return
    result = run(config, console=err)
    if as_json:
        print_json(result.report)
        _warn_if_timed_under_load(result.report)
        return
    for step in result.report["steps"]:
        if "sensitivity" in step["record"]:
            out.print(sensitivity_table(step["record"]))
    out.print(run_table(result.report))
    if result.report.get("deployment"):
        out.print(deployment_table(result.report["deployment"]))
    for name, plot in result.report["plots"].items():
        out.print(f"plot ({name}): {plot}")
    out.print(f"report: {result.report_path}\ncheckpoint: {result.checkpoint_path}")
    _warn_if_timed_under_load(result.report)


def bench_command(
    model: Annotated[Path | None, typer.Option("--model", "-m", help="checkpoint to measure (accuracy on its "
                                                                     "dataset's test split)")] = None,
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="instead of --model: a freshly built "
                                                                  "architecture (no accuracy)")] = None,
    num_classes: Annotated[int, typer.Option("--num-classes", help="classes of a --arch model")] = 1000,
    in_channels: Annotated[int, typer.Option("--in-channels", help="input channels of a --arch model")] = 3,
    backends: BackendsOpt = "torch,onnxruntime",
    input_size: Annotated[int | None, typer.Option(
        "--input-size", help="input px for latency, MACs and ONNX (default: the model's; 224 for --arch)")] = None,
    batch_size: BatchOpt = 1,
    threads: ThreadsOpt = None,
    batch_sizes: BatchSizesOpt = None,
    thread_counts: ThreadCountsOpt = None,
    repeats: Annotated[int, typer.Option("--repeats", help="back-to-back latency measurements, to show their "
                                                           "spread (ONNX Runtime: see --processes)")] = 2,
    processes: ProcessesOpt = 1,
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="JSON file to write")] = None,
    compress: CompressOpt = "zip,xz",
    artifacts: ArtifactsOpt = None,
    layers: Annotated[int, typer.Option("--layers", help="largest layers to show in the complexity table")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Measure one model: file sizes, latency per backend, complexity per layer, accuracy under torch and ONNX."""
    from compressor._util.fileio import write_json_atomic
    from compressor.measure.bench import bench
    from compressor.report import bench_renderables

    if output is not None:
        ensure_writable_file(output, "the report")
    if (model is None) == (arch is None):
        raise CompressorError("bench needs exactly one of --model CKPT or --arch NAME")
    config = _measure_config(backends, batch_size, threads, compress, input_size, repeats, processes)
    grid = _grid_options(None, batch_sizes, thread_counts)
    result = bench(model=model, arch=arch, num_classes=num_classes, in_channels=in_channels, dataset=data,
                   data_dir=data_dir, cache_dir=cache_dir, config=config, artifacts_dir=artifacts,
                   command=command_line(), batch_sizes=grid["batch_sizes"], thread_counts=grid["thread_counts"])
    if as_json:
        print_json(result)
    else:
        for table in bench_renderables(result["measurements"], layers):
            out.print(table)
    _warn_if_timed_under_load(result["measurements"])
    if output is not None:
        write_json_atomic(result, output)
        (err if as_json else out).print(f"report: {output}")


def train_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the checkpoint")],
    arch: ArchOpt = None,
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    input_size: SizeOpt = None,
    epochs: EpochsOpt = None,
    lr: Annotated[float | None, typer.Option("--lr", help="peak learning rate of the one-cycle schedule "
                                                          "(default: the recipe's)")] = None,
    seed: SeedOpt = 0,
    pretrained: PretrainedOpt = False,
    recipe: RecipeOpt = "standard",
    precision: PrecisionOpt = None,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Train a baseline classifier and save it as a checkpoint that `run --model` accepts."""
    from compressor.data import load_dataset
    from compressor.measure.accuracy import evaluate, torch_forward
    from compressor.models.baselines import BaselineRequest, train_baseline, training_config
    from compressor.models.checkpoint import dataset_for_arch, save_checkpoint

    ensure_writable_file(output, "the checkpoint")
    check_device(device)
    if lr is not None and not lr > 0:
        raise CompressorError(f"--lr must be a positive number; got {lr}")
    check_precision(precision)
    dataset, note = dataset_for_arch(load_dataset(data or "digits", data_dir=data_dir, cache_dir=cache_dir),
                                     arch or "resnet18")
    if note:
        err.print(f"note: {note}", markup=False, highlight=False)
    request = BaselineRequest(arch=arch or "resnet18", input_size=input_size, epochs=epochs, lr=lr, seed=seed,
                              pretrained=pretrained, recipe=recipe, precision=precision)
    training_config(request, dataset.info.name)
    checkpoint = train_baseline(request, dataset, show_progress=not quiet, device=device)
    metrics = evaluate(torch_forward(checkpoint.model), dataset.test, checkpoint.spec.input_size)
    checkpoint.history[-1]["test"] = metrics
    save_checkpoint(checkpoint, output)
    out.print(f"test accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1_macro']:.4f} "
              f"on {metrics['samples']} images; saved {output}")


def _warn_if_timed_under_load(report: Any) -> None:
    """One warning line when another process was busy during a timing: those latencies are not measurements."""
    from compressor.report.schema import timed_under_load

    if timed_under_load(report):
        err.print("warning: timed under load: another process used more than 0.1 core during a timing (see each "
                  "latency's `load` in the report); rerun alone before quoting latencies", style="yellow",
                  markup=False, highlight=False)
