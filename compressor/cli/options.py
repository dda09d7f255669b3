"""What every `compressor` and `supcon` command shares: option types, the two consoles, the recorded command line,
small parsers, and `run_app`, which turns errors into one line and an exit code.

Exit codes: 0 success, 1 runtime failure (`RuntimeFailure`: diverged training, a full disk, a failed sweep cell),
2 usage error (`CompressorError`, or a bad option), 130 interrupted.
"""

from __future__ import annotations

import copy
import shlex
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from typer.models import OptionInfo

from compressor.errors import CompressorError, RuntimeFailure

Command = TypeVar("Command", bound=Callable[..., object])

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

out = Console()
err = Console(stderr=True)

DataOpt = Annotated[str | None, typer.Option("--data", "-d", help="digits | fashion-mnist | cifar10 | cifar100 | "
                                                               "imagefolder:PATH (default digits)")]
ArchOpt = Annotated[str | None, typer.Option("--arch", "-a",
                                             help="architecture (default resnet18); see `compressor list`")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="where to look for dataset files first "
                                                                    "(also $COMPRESSOR_DATA)")]
CacheOpt = Annotated[Path | None, typer.Option("--cache-dir", help="baseline/download cache (default "
                                                                   "~/.cache/compressor, or $COMPRESSOR_CACHE)")]
SizeOpt = Annotated[int | None, typer.Option("--input-size", help="input resolution in px (default: native size, "
                                                                  "at least the architecture's minimum)")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="baseline training epochs (default per dataset)")]
RecipeOpt = Annotated[str, typer.Option("--recipe", help="how a baseline is trained: standard | anchor (see "
                                                           "docs/datasets-and-models.md, 'Baselines'); the cache "
                                                           "keeps one per recipe")]
PrecisionOpt = Annotated[str | None, typer.Option("--precision", help="training numerics: fp32 | bf16 (autocast + "
                                                                      "channels_last) | auto (a short probe picks the "
                                                                      "faster; default: the recipe's)")]
SeedOpt = Annotated[int, typer.Option("--seed", help="random seed for training and strategies")]
PretrainedOpt = Annotated[bool, typer.Option("--pretrained", help="start the baseline from torchvision's ImageNet "
                                                                  "weights (needs network or a warm cache)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the result document as JSON on stdout instead of "
                                                     "tables (progress and warnings stay on stderr)")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
BackendsOpt = Annotated[str, typer.Option("--backends", help="latency backends, comma-separated: torch, "
                                                             "onnxruntime, cuda")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="batch size for latency")]
DeploySizeOpt = Annotated[int | None, typer.Option(
    "--deploy-size", help="also time both models and count MACs at this input size in px (e.g. 224); accuracy "
                          "stays at the training size")]
BatchSizesOpt = Annotated[str | None, typer.Option(
    "--batch-sizes", help="also time at these batch sizes, comma-separated (e.g. 1,8,32)")]
ThreadCountsOpt = Annotated[str | None, typer.Option(
    "--thread-counts", help="thread counts of those timings, comma-separated, `all` = every core (default: 1,all)")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads for torch and ONNX Runtime "
                                                                  "(default: torch's)")]
ProcessesOpt = Annotated[int, typer.Option(
    "--processes", help="time ONNX Runtime in this many fresh processes, every model interleaved in each: medians "
                        "of per-process medians, speed-ups as the median of per-process ratios (1: in this "
                        "process)")]
CompressOpt = Annotated[str, typer.Option("--compress", help="also size each artifact compressed: zip, xz "
                                                             "(comma-separated) or none")]
ArtifactsOpt = Annotated[Path | None, typer.Option("--artifacts", help="keep the measured files (checkpoint "
                                                                       "variants, ONNX, zip/xz) in this directory")]
DEVICE_HELP = ("where training, fine-tuning and calibration run: auto | cpu | cuda | cuda:N | mps "
               "(auto: the first CUDA GPU, else MPS, else the CPU)")
DeviceOpt = Annotated[str, typer.Option("--device", help=DEVICE_HELP)]
# The old spelling of -o/--output on `report`, `sweep` and `supcon evaluate`: still accepted, no longer shown.
LegacyOutOpt = Annotated[Path | None, typer.Option("--out", hidden=True, help="old spelling of --output")]

_recorded: dict[str, list[str] | None] = {"argv": None}


def record_argv(argv: list[str] | None) -> None:
    """Remember the arguments `main` was given, for `command_line` (None: use sys.argv)."""
    _recorded["argv"] = list(argv) if argv is not None else None


def command_line(prog: str = "compressor") -> str:
    """The command being run, as a shell line for reports (the arguments given to `main`, else sys.argv)."""
    argv = _recorded["argv"]
    return shlex.join([prog, *(argv if argv is not None else sys.argv[1:])])


def names(text: str) -> tuple[str, ...]:
    """The comma-separated names in `text`, stripped, without empty ones and without `none`."""
    return tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")


def floats(text: str, option: str) -> tuple[float, ...]:
    """Comma-separated numbers, or a CompressorError naming `option`."""
    try:
        return tuple(float(v) for v in names(text))
    except ValueError:
        raise CompressorError(f"{option} takes comma-separated numbers; got {text!r}") from None


def ints(text: str, option: str) -> tuple[int, ...]:
    """Comma-separated integers, or a CompressorError naming `option`."""
    try:
        return tuple(int(v) for v in names(text))
    except ValueError:
        raise CompressorError(f"{option} takes comma-separated integers; got {text!r}") from None


def output_path(output: Path | None, legacy_out: Path | None, *, required: bool = True) -> Path | None:
    """The path given as -o/--output or as the legacy --out (both: they must agree)."""
    if output is not None and legacy_out is not None and output != legacy_out:
        raise CompressorError(f"--output {output} and --out {legacy_out} disagree; give -o/--output once")
    path = output if output is not None else legacy_out
    if path is None and required:
        raise CompressorError("Missing option '--output' / '-o'")
    return path


def check_precision(precision: str | None) -> str | None:
    """`precision` unchanged when it is None or one of fp32, bf16, auto; else a one-line CompressorError."""
    from compressor.models.training import PRECISIONS

    if precision is not None and precision not in PRECISIONS:
        raise CompressorError(f"--precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def check_device(device: str) -> str:
    """`device` unchanged once it names a device this machine has; else a one-line CompressorError."""
    from compressor._util.device import resolve_device

    resolve_device(device)
    return device


def print_json(document: object) -> None:
    """Write `document` to stdout as indented JSON and nothing else, so `--json` output pipes into jq or a script."""
    import json

    plain_lines([json.dumps(document, indent=2)])


def plain_lines(lines: list[str]) -> None:
    """Write lines to stdout as they are: no wrapping, no cropping, no markup (for pipes and scripts)."""
    handle = out.file
    for line in lines:
        handle.write(line + "\n")
    handle.flush()


def new_app(help_text: str) -> typer.Typer:
    """A typer app with the shared settings and a `--version` option."""
    app = typer.Typer(help=help_text, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.callback()(_root)
    return app


def in_panels(panels: dict[str, tuple[str, ...]]) -> Callable[[Command], Command]:
    """Group a command's options into named help panels ({panel: parameter names}); every option gets one."""

    def decorate(command: Command) -> Command:
        where = {name: panel for panel, names in panels.items() for name in names}
        hints = typing.get_type_hints(command, include_extras=True)
        for name, hint in hints.items():
            if name == "return":
                continue
            base, *extras = typing.get_args(hint)
            # shared aliases (ArchOpt, ...) are used by several commands: give this command its own copy
            option = copy.copy(next(extra for extra in extras if isinstance(extra, OptionInfo)))
            option.rich_help_panel = where[name]
            command.__annotations__[name] = Annotated[base, option]
        return command

    return decorate


def version_text(prog: str) -> str:
    """`compressor 0.1.0`, or for another program of this package `supcon (compressor 0.1.0)`."""
    from compressor import __version__

    return f"compressor {__version__}" if prog == "compressor" else f"{prog} (compressor {__version__})"


def _show_version(ctx: typer.Context, value: bool) -> None:
    if value:
        out.print(version_text(ctx.info_name or "compressor"), markup=False, highlight=False)
        raise typer.Exit(EXIT_OK)


def _root(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_show_version,
                                          help="print the version and exit")] = False,
) -> None:
    pass


def _fail(message: str, code: int) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def run_app(typer_app: typer.Typer, prog_name: str, argv: list[str] | None) -> None:
    """Run a typer app and exit: RuntimeFailure ends in one line and exit code 1, CompressorError and usage errors
    in one line and exit code 2, an interrupt in 130; a bare invocation prints the help and exits 0."""
    command = typer.main.get_command(typer_app)
    try:
        code = command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except RuntimeFailure as exc:
        _fail(str(exc), EXIT_FAILURE)
    except CompressorError as exc:
        _fail(str(exc), EXIT_USAGE)
    except typer.Abort:
        err.print("aborted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare command: typer has printed the help already
            if message.strip():
                plain_lines([message.rstrip("\n")])
            sys.exit(EXIT_OK)
        _fail(message, EXIT_USAGE)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
