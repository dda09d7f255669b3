"""`supcon` command line: pretrain | linear | baseline | evaluate | tsne, a thin typer layer over the package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compressor._util.preflight import ensure_writable_dir, ensure_writable_file
from compressor.cli.options import (
    CacheOpt,
    DataDirOpt,
    DataOpt,
    DeviceOpt,
    LegacyOutOpt,
    QuietOpt,
    SeedOpt,
    SizeOpt,
    check_device,
    err,
    new_app,
    out,
    output_path,
    run_app,
)
from compressor.data import Dataset
from compressor.errors import CompressorError

app = new_app("Supervised contrastive pre-training and linear evaluation of zoo encoders.")

ArchOpt = Annotated[str, typer.Option("--arch", "-a", help="encoder architecture from compressor's zoo")]
PretrainDeviceOpt = Annotated[str, typer.Option("--device", help="where pre-training runs: auto | cpu | cuda | "
                                                                 "cuda:N (auto: cuda when available, else cpu; "
                                                                 "under torchrun each rank takes its LOCAL_RANK GPU)")]


@app.command("pretrain")
def pretrain_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="pre-training checkpoint, rewritten every epoch")],
    arch: ArchOpt = "densenet201",
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    input_size: SizeOpt = None,
    epochs: Annotated[int, typer.Option("--epochs", help="pre-training epochs")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="images per global batch (x views rows)")] = 128,
    optimizer: Annotated[str, typer.Option("--optimizer", help="sgd (Nesterov) or adamw")] = "sgd",
    lr: Annotated[float, typer.Option("--lr", help="peak learning rate")] = 0.05,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="on weights, not biases/norms")] = 1e-4,
    warmup_epochs: Annotated[float, typer.Option("--warmup-epochs", help="linear warm-up before the cosine "
                                                                          "decay (at most half the run)")] = 0.5,
    temperature: Annotated[float, typer.Option("--temperature", help="SupCon temperature")] = 0.1,
    projection_dim: Annotated[int, typer.Option("--projection-dim", help="projection head output width")] = 128,
    views: Annotated[int, typer.Option("--views", help="augmented views per image")] = 2,
    crop_min: Annotated[float, typer.Option("--crop-min", help="smallest random crop, as a fraction of the "
                                                                "image area")] = 0.5,
    unsupervised: Annotated[bool, typer.Option("--unsupervised", help="ignore labels (SimCLR)")] = False,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="continue from --output if it "
                                                                        "exists")] = True,
    seed: SeedOpt = 0,
    device: PretrainDeviceOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Pre-train an encoder + projection head with the SupCon loss (run under torchrun for several processes)."""
    from compressor.data import load_dataset
    from supcon.distributed import setup_world
    from supcon.pretrain import PretrainConfig, pretrain
    from supcon.views import ViewConfig

    ensure_writable_file(output, "the pre-training checkpoint")
    world = setup_world(None if device == "auto" else device)
    try:
        view_config = ViewConfig(views=views, crop_scale=(crop_min, 1.0))
    except ValueError as exc:
        raise CompressorError(str(exc)) from None
    config = PretrainConfig(arch=arch, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                            weight_decay=weight_decay, warmup_epochs=warmup_epochs, temperature=temperature,
                            projection_dim=projection_dim, supervised=not unsupervised, input_size=input_size,
                            seed=seed, views=view_config)
    dataset = load_dataset(data or "digits", data_dir=data_dir, cache_dir=cache_dir)
    result = pretrain(dataset, config, output, resume=resume, world=world, show_progress=not quiet, console=err)
    if world.is_main:
        out.print(f"pre-trained {arch} for {result['epochs']} epochs ({result['seconds']:.0f} s); saved {output}")


@app.command("baseline")
def baseline_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the classifier checkpoint")],
    arch: Annotated[str | None, typer.Option("--arch", "-a", help="architecture (default: the --budget-from "
                                                                  "checkpoint's, else densenet201)")] = None,
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    input_size: SizeOpt = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="cross-entropy epochs")] = None,
    budget_from: Annotated[Path | None, typer.Option("--budget-from", help="a pre-training checkpoint: train for "
                                                                           "its epochs x views, the same number of "
                                                                           "image passes")] = None,
    lr: Annotated[float, typer.Option("--lr", help="peak learning rate of the one-cycle schedule")] = 0.05,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Train the same encoder with cross-entropy (compressor's training loop), for comparison with SupCon."""
    from compressor.data import load_dataset
    from compressor.models.baselines import BaselineRequest, train_baseline
    from compressor.models.checkpoint import save_checkpoint
    from supcon.pretrain import PretrainConfig, load_pretrain_checkpoint

    ensure_writable_file(output, "the classifier checkpoint")
    check_device(device)
    if (epochs is None) == (budget_from is None):
        raise CompressorError("give exactly one of --epochs N and --budget-from PRETRAIN.pt")
    if budget_from is not None:
        state = load_pretrain_checkpoint(budget_from)
        config = PretrainConfig.from_dict(state["config"])
        epochs = config.epochs * config.views.views
        input_size = input_size or config.input_size
        arch = arch or config.arch
        data = data or state["dataset"]["name"]
        err.print(f"budget from {budget_from}: {config.epochs} epochs x {config.views.views} views = {epochs} "
                  "cross-entropy epochs")
    dataset = load_dataset(data or "digits", data_dir=data_dir, cache_dir=cache_dir)
    arch = arch or "densenet201"
    request = BaselineRequest(arch=arch, input_size=input_size, epochs=epochs, lr=lr, seed=seed)
    checkpoint = train_baseline(request, dataset, show_progress=not quiet, device=device)
    save_checkpoint(checkpoint, output)
    out.print(f"trained {arch} with cross-entropy for {epochs} epochs "
              f"({checkpoint.history[-1]['seconds']:.0f} s); saved {output}")


def _pretrained_dataset(path: Path, data: str | None, data_dir: Path | None, cache_dir: Path | None) -> Dataset:
    """The dataset a pre-training checkpoint was trained on (or `data`, which must have its channels)."""
    from compressor.data import load_dataset
    from supcon.pretrain import load_pretrain_checkpoint

    facts = load_pretrain_checkpoint(path)["dataset"]
    dataset = load_dataset(data or facts["name"], data_dir=data_dir, cache_dir=cache_dir)
    if dataset.info.channels != facts["channels"]:
        raise CompressorError(f"dataset {dataset.info.name} has {dataset.info.channels} channels; {path} was "
                              f"pre-trained on {facts['channels']}")
    return dataset


@app.command("linear")
def linear_command(
    pretrained: Annotated[Path, typer.Argument(help="pre-training checkpoint from `supcon pretrain`")],
    output: Annotated[Path, typer.Option("--output", "-o", help="classifier checkpoint (what `compressor run "
                                                                 "--model` takes)")],
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    epochs: Annotated[int, typer.Option("--epochs", help="linear classifier epochs")] = 30,
    lr: Annotated[float, typer.Option("--lr", help="linear classifier learning rate")] = 0.1,
    batch_size: Annotated[int, typer.Option("--batch-size", help="linear classifier batch size")] = 256,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 1e-4,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Freeze the encoder, cache its features, fit a linear classifier; save encoder + head as a classifier."""
    from compressor.models.checkpoint import save_checkpoint
    from supcon.linear import LinearConfig, linear_evaluation

    ensure_writable_file(output, "the classifier checkpoint")
    check_device(device)
    dataset = _pretrained_dataset(pretrained, data, data_dir, cache_dir)
    config = LinearConfig(epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed)
    checkpoint, record = linear_evaluation(pretrained, dataset, config, cache_dir=cache_dir,
                                           show_progress=not quiet, device=device)
    save_checkpoint(checkpoint, output)
    test = record["test"]
    out.print(f"linear evaluation: test accuracy {test['accuracy']:.4f}, macro F1 {test['f1_macro']:.4f} "
              f"(calib {record['calib']['accuracy']:.4f}); saved {output}")


@app.command("evaluate")
def evaluate_command(
    model: Annotated[Path, typer.Argument(help="classifier checkpoint (from `supcon linear`, `supcon baseline` "
                                               "or `compressor`)")],
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    split: Annotated[str, typer.Option("--split", help="test or calib")] = "test",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write metrics.json and confusion.png in "
                                                                       "this directory")] = None,
    legacy_out: LegacyOutOpt = None,
) -> None:
    """Accuracy, macro precision/recall/F1, per-class report and confusion matrix (scikit-learn)."""
    from rich.table import Table

    from compressor._util.fileio import write_json_atomic
    from compressor.models.checkpoint import load_checkpoint, load_dataset_for
    from compressor.report.plots import plot_confusion
    from supcon.evaluate import evaluate_classifier

    out_dir = output_path(output, legacy_out, required=False)
    if out_dir is not None:
        ensure_writable_dir(out_dir, "the evaluation directory")
    if split not in ("test", "calib"):
        raise CompressorError(f"--split must be test or calib; got {split!r}")
    checkpoint = load_checkpoint(model)
    dataset = load_dataset_for(checkpoint.spec, data, data_dir=data_dir, cache_dir=cache_dir)
    result = evaluate_classifier(checkpoint.model, getattr(dataset, split), checkpoint.spec.input_size,
                                 dataset.info.classes)
    table = Table(title=f"{model} on {dataset.info.name} {split} ({result['samples']} images)")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in result["per_class"].items():
        table.add_row(name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1-score']:.4f}",
                      str(int(row["support"])))
    table.add_row("macro", f"{result['precision_macro']:.4f}", f"{result['recall_macro']:.4f}",
                  f"{result['f1_macro']:.4f}", str(result["samples"]), style="bold")
    out.print(table)
    out.print(f"accuracy {result['accuracy']:.4f}, macro F1 {result['f1_macro']:.4f}, "
              f"weighted F1 {result['f1_weighted']:.4f}")
    if out_dir is not None:
        write_json_atomic({"model": str(model), "dataset": dataset.info.name, "split": split,
                           "history": checkpoint.history, **result}, out_dir / "metrics.json")
        plot_confusion(result, out_dir / "confusion.png", f"{model.name}: {dataset.info.name} {split}")
        out.print(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'confusion.png'}")


@app.command("tsne")
def tsne_command(
    pretrained: Annotated[Path, typer.Argument(help="pre-training checkpoint from `supcon pretrain`")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG to write")],
    data: DataOpt = None,
    data_dir: DataDirOpt = None,
    cache_dir: CacheOpt = None,
    samples: Annotated[int, typer.Option("--samples", help="test images to embed (fixed-seed subsample)")] = 2000,
    classifier: Annotated[list[str] | None, typer.Option("--classifier", help="TITLE=CHECKPOINT: add a panel "
                                                                               "with this classifier's "
                                                                               "penultimate features")] = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """t-SNE of test-set encoder features at initialization and after pre-training (plus any classifiers)."""
    from compressor.models.checkpoint import load_checkpoint
    from supcon.evaluate import tsne_before_after

    ensure_writable_file(output, "the plot")
    if samples < 10:
        raise CompressorError(f"--samples must be at least 10; got {samples}")
    dataset = _pretrained_dataset(pretrained, data, data_dir, cache_dir)
    extra = {}
    for item in classifier or []:
        title, sep, path = item.partition("=")
        if not sep or not title or not path:
            raise CompressorError(f"--classifier takes TITLE=CHECKPOINT; got {item!r}")
        extra[title] = load_checkpoint(Path(path)).model
    result = tsne_before_after(pretrained, dataset.test, output, samples=samples, seed=seed, classifiers=extra,
                               show_progress=not quiet)
    out.print(f"t-SNE of {result['samples']} test images ({', '.join(result['panels'])}); saved {output}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line on stderr and exit code 1 (runtime failure, e.g. diverged pre-training) or 2
    (usage error)."""
    run_app(app, "supcon", argv)


if __name__ == "__main__":
    main()
