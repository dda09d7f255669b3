"""The OpenAImer Track-2 protocol: export a submission directory, and score one the way its evaluator does.

Protocol (srinjoydutta03/OpenAImer-Track-2, scripts/evaluate.py): ImageFolder data, RGB, Resize 256 ->
CenterCrop 224 -> ImageNet normalization, batch 1; size = the `model.*` file in MiB; latency = mean of per-image
forward times over the first 100 images after one warm-up; accuracy in % over every image; score =
0.3 base_size/size + 0.3 base_latency/latency + 0.4 accuracy/base_accuracy.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from compressor._util.fileio import save_torch_atomic, write_atomic, write_json_atomic
from compressor.errors import CompressorError
from compressor.measure.export import encode_tensor, half_state_dict
from compressor.models.checkpoint import Checkpoint, load_checkpoint, structure_edits
from compressor.models.zoo import build_model, get_arch, list_archs

LOADER_SOURCE = Path(__file__).with_name("loader.py")
LATENCY_RUNS = 100


@dataclass(frozen=True)
class Baseline:
    """The reference the score is relative to; the defaults are the competition's published baseline."""

    size_mb: float = 44.7
    latency_ms: float = 30.0
    accuracy_pct: float = 40.0


def export_submission(checkpoint: Checkpoint, out_dir: Path, *, half: bool = False,
                      username: str = "compressor") -> dict[str, Path]:
    """Write model.pt (state_dict, bitmask-sparse where smaller), metadata.json and model_loader.py to `out_dir`."""
    spec, model = checkpoint.spec, checkpoint.model
    stale = [p.name for p in out_dir.glob("model.*") if p.name != "model.pt"] if out_dir.exists() else []
    if stale:
        raise CompressorError(f"{out_dir} already holds {', '.join(stale)}; the evaluator takes the first "
                              "model.* file it finds, so export into an empty directory")
    info = get_arch(spec.arch)
    if info.stem_conv is None or info.classifier is None:
        raise CompressorError(f"the openaimer export supports the zoo architectures ({', '.join(list_archs())}); "
                              f"{spec.arch} is not one of them")
    edits = structure_edits(build_model(spec.arch, spec.num_classes, spec.in_channels), model)
    weights = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    state = {name: encode_tensor(tensor) for name, tensor in (half_state_dict(weights) if half else weights).items()}
    paths = {"model": out_dir / "model.pt", "metadata": out_dir / "metadata.json",
             "loader": out_dir / "model_loader.py"}
    save_torch_atomic(state, paths["model"])
    meta = {"username": username, "model_format": "pytorch",
            "additional_notes": f"{spec.arch} trained on {spec.dataset} at {spec.input_size} px, exported by "
                                "compressor; model_loader.py adapts the protocol's 224 px RGB input",
            "compressor": {"arch": spec.arch, "num_classes": spec.num_classes, "in_channels": spec.in_channels,
                           "input_size": spec.input_size, "mean": list(spec.mean), "std": list(spec.std),
                           "classes": list(spec.classes), "stem_conv": info.stem_conv,
                           "classifier": info.classifier, "edits": edits, "half": half},
            "model_size_mb": round(paths["model"].stat().st_size / 2**20, 4)}
    write_json_atomic(meta, paths["metadata"])
    write_atomic(paths["loader"], lambda tmp: shutil.copyfile(LOADER_SOURCE, tmp))
    return paths


def load_submission(directory: Path) -> tuple[torch.nn.Module, Path]:
    """Load a submission as the evaluator does: the first model.* file, through its model_loader.load_model."""
    models = sorted(directory.glob("model.*"))
    loader = directory / "model_loader.py"
    if not models:
        raise CompressorError(f"{directory} has no model.* file; is it an OpenAImer submission directory?")
    if not loader.exists():
        raise CompressorError(f"{directory} has no model_loader.py; export it with `compressor export`")
    module_spec = importlib.util.spec_from_file_location(f"openaimer_submission_{abs(hash(directory))}", loader)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
        model = module.load_model(str(models[0]))
    except Exception as exc:  # noqa: BLE001 - any failure of foreign loader code is reported in one line
        raise CompressorError(f"the submission in {directory} does not load: {type(exc).__name__}: {exc}") from exc
    return model, models[0]


def protocol_loader(data_dir: Path) -> torch.utils.data.DataLoader:
    """The protocol's data: ImageFolder, RGB, Resize 256, CenterCrop 224, ImageNet normalization, batch 1."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    transform = transforms.Compose([transforms.Lambda(lambda image: image.convert("RGB")), transforms.Resize(256),
                                    transforms.CenterCrop(224), transforms.ToTensor(),
                                    transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    try:
        dataset = ImageFolder(str(data_dir), transform=transform)
    except (FileNotFoundError, OSError) as exc:
        raise CompressorError(f"cannot read the ImageFolder {data_dir}: {exc}") from None
    return torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=False)


def score_submission(directory: Path, data_dir: Path, baseline: Baseline = Baseline(), *,
                     show_progress: bool = True) -> dict[str, Any]:
    """The protocol's size, latency, accuracy and score for a submission, plus the median latency beside them."""
    model, model_path = load_submission(directory)
    loader = protocol_loader(data_dir)
    model.eval()
    size_mb = model_path.stat().st_size / 2**20
    times, correct, total = [], 0, 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not show_progress, console=Console(stderr=True)) as progress, torch.no_grad():
        task = progress.add_task("score", total=len(loader.dataset))
        for index, (x, y) in enumerate(loader):
            if index == 0:
                model(x)  # the protocol's single warm-up call
            if index < LATENCY_RUNS:
                start = time.perf_counter()
                logits = model(x)
                times.append((time.perf_counter() - start) * 1e3)
            else:
                logits = model(x)
            correct += int((logits.argmax(1) == y).sum())
            total += len(y)
            progress.advance(task)
    if not total:
        raise CompressorError(f"the ImageFolder {data_dir} holds no images")
    latency, accuracy = statistics.fmean(times), 100.0 * correct / total
    scores = {"size_score": baseline.size_mb / size_mb, "latency_score": baseline.latency_ms / latency,
              "accuracy_score": accuracy / baseline.accuracy_pct}
    total_score = 0.3 * scores["size_score"] + 0.3 * scores["latency_score"] + 0.4 * scores["accuracy_score"]
    classes = json.loads((directory / "metadata.json").read_text()).get("compressor", {}).get("classes")
    folder_classes = loader.dataset.classes
    return {"protocol": "openaimer", "model_size": size_mb, "latency": latency, "accuracy": accuracy, **scores,
            "total_score": total_score, "images": total, "latency_runs": len(times),
            "latency_median_ms": statistics.median(times), "threads": torch.get_num_threads(),
            "baseline": {"size_mb": baseline.size_mb, "latency_ms": baseline.latency_ms,
                         "accuracy_pct": baseline.accuracy_pct},
            "class_mismatch": classes is not None and [str(c) for c in classes] != folder_classes,
            "python": sys.version.split()[0]}


def score_checkpoint(checkpoint_path: Path, data_dir: Path, baseline: Baseline = Baseline(), *, half: bool = False,
                     show_progress: bool = True) -> dict[str, Any]:
    """Export a checkpoint to a temporary submission and score it; the result names the checkpoint."""
    checkpoint = load_checkpoint(checkpoint_path)
    with tempfile.TemporaryDirectory(prefix="compressor-openaimer-") as tmp:
        export_submission(checkpoint, Path(tmp), half=half)
        result = score_submission(Path(tmp), data_dir, baseline, show_progress=show_progress)
    return {**result, "checkpoint": str(checkpoint_path), "half": half}
