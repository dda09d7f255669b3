"""`supcon` command line: pretrain | linear | baseline | evaluate | tsne, a thin typer layer over the package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from compressor.cli import CacheOpt, DataDirOpt, DataOpt, QuietOpt, SeedOpt, SizeOpt, run_app
from compressor.errors import CompressorError

app = typer.Typer(help="Supervised contrastive pre-training and linear evaluation of zoo encoders.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
out = Console()
err = Console(stderr=True)

ArchOpt = Annotated[str, typer.Option("--arch", "-a", help="encoder architecture from compressor's zoo")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="cpu or cuda (default: cuda when available)")]


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
    device: DeviceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Pre-train an encoder + projection head with the SupCon loss (run under torchrun for several processes)."""
    from compressor.data import load_dataset
    from supcon.distributed import setup_world
    from supcon.pretrain import PretrainConfig, pretrain
    from supcon.views import ViewConfig

    try:
        view_config = ViewConfig(views=views, crop_scale=(crop_min, 1.0))
    except ValueError as exc:
        raise CompressorError(str(exc)) from None
    config = PretrainConfig(arch=arch, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
                            weight_decay=weight_decay, warmup_epochs=warmup_epochs, temperature=temperature,
                            projection_dim=projection_dim, supervised=not unsupervised, input_size=input_size,
                            seed=seed, views=view_config)
    dataset = load_dataset(data or "digits", data_dir=data_dir, cache_dir=cache_dir)
    world = setup_world(device)
    result = pretrain(dataset, config, output, resume=resume, world=world, show_progress=not quiet, console=err)
    if world.is_main:
        out.print(f"pre-trained {arch} for {result['epochs']} epochs ({result['seconds']:.0f} s); saved {output}")


@app.command("baseline")
def baseline_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the classifier checkpoint")],
    arch: ArchOpt = "densenet201",
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
    quiet: QuietOpt = False,
) -> None:
    """Train the same encoder with cross-entropy (compressor's training loop), for comparison with SupCon."""
    from compressor.baseline import BaselineRequest, train_baseline
    from compressor.checkpoint import save_checkpoint
    from compressor.data import load_dataset
    from supcon.pretrain import PretrainConfig, load_pretrain_checkpoint

    if (epochs is None) == (budget_from is None):
        raise CompressorError("give exactly one of --epochs N and --budget-from PRETRAIN.pt")
    if budget_from is not None:
        config = PretrainConfig.from_dict(load_pretrain_checkpoint(budget_from)["config"])
        epochs = config.epochs * config.views.views
        input_size = input_size or config.input_size
        err.print(f"budget from {budget_from}: {config.epochs} epochs x {config.views.views} views = {epochs} "
                  "cross-entropy epochs")
    dataset = load_dataset(data or "digits", data_dir=data_dir, cache_dir=cache_dir)
    request = BaselineRequest(arch=arch, input_size=input_size, epochs=epochs, lr=lr, seed=seed)
    checkpoint = train_baseline(request, dataset, show_progress=not quiet)
    save_checkpoint(checkpoint, output)
    out.print(f"trained {arch} with cross-entropy for {epochs} epochs "
              f"({checkpoint.history[-1]['seconds']:.0f} s); saved {output}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point (errors: one line, exit code 2)."""
    run_app(app, "supcon", argv)


if __name__ == "__main__":
    main()
