"""`compressor export | score`: the OpenAImer Track-2 competition protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compressor._util.preflight import ensure_writable_dir, ensure_writable_file
from compressor.cli.options import JsonOpt, QuietOpt, command_line, err, out, print_json
from compressor.errors import CompressorError


def export_command(
    out_dir: Annotated[Path, typer.Argument(help="submission directory to write")],
    model: Annotated[Path, typer.Option("--model", "-m", help="classifier checkpoint to export")],
    export_format: Annotated[str, typer.Option("--format", help="submission format: openaimer")] = "openaimer",
    half: Annotated[bool, typer.Option("--half", help="store weights as fp16 (half the file; the loader computes "
                                                      "in fp32)")] = False,
    username: Annotated[str, typer.Option("--username", help="username field of metadata.json")] = "compressor",
) -> None:
    """Export a checkpoint as a competition submission (OpenAImer Track-2: model.pt, metadata.json, loader)."""
    from compressor.models.checkpoint import load_checkpoint
    from compressor.openaimer.protocol import export_submission

    ensure_writable_dir(out_dir, "the submission directory")
    if export_format != "openaimer":
        raise CompressorError(f"unknown --format {export_format!r}; supported: openaimer")
    paths = export_submission(load_checkpoint(model), out_dir, half=half, username=username)
    size = paths["model"].stat().st_size
    out.print(f"wrote {out_dir}: model.pt ({size / 2**20:.3f} MiB), metadata.json, model_loader.py")


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
    as_json: JsonOpt = False,
) -> None:
    """Compute a submission's size, latency, accuracy and score exactly as the competition's evaluator does."""
    from compressor._util.fileio import write_json_atomic
    from compressor.openaimer.protocol import Baseline, score_checkpoint, score_submission

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
    result["command"] = command_line()
    if as_json:
        print_json(result)
    else:
        out.print(f"size {result['model_size']:.3f} MB, latency {result['latency']:.2f} ms (mean of "
                  f"{result['latency_runs']}; median {result['latency_median_ms']:.2f}), "
                  f"accuracy {result['accuracy']:.2f} % on {result['images']} images -> score "
                  f"{result['total_score']:.3f} (size {result['size_score']:.2f}, latency "
                  f"{result['latency_score']:.2f}, accuracy {result['accuracy_score']:.2f})")
    if result["class_mismatch"]:
        err.print("[yellow]warning: the folder's class names differ from the model's; labels are matched by sorted "
                  "folder order, as the evaluator does[/yellow]")
    if output is not None:
        write_json_atomic(result, output)
