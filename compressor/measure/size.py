"""On-disk size: the byte count of real files, never a formula."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from compressor._util.fileio import save_torch_atomic
from compressor.measure.export import compress_file, export_onnx, half_state_dict, save_sparse

COMPRESSIONS = ("zip", "xz")


def write_artifacts(model: nn.Module, directory: str | Path, *, in_channels: int, input_size: int,
                    onnx: bool = True) -> dict[str, tuple[Path, bool]]:
    """Write every shippable form of `model` into `directory`: name -> (path, lossless)."""
    directory = Path(directory)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    half = half_state_dict(state)
    files = {
        "fp32": (save_torch_atomic(model.state_dict(), directory / "model.pt"), True),
        "fp32-sparse": (save_sparse(state, directory / "model.sparse.pt"), True),
        "fp16": (save_torch_atomic(half, directory / "model.fp16.pt"), False),
        "fp16-sparse": (save_sparse(half, directory / "model.fp16.sparse.pt"), False),
    }
    if onnx:
        files["onnx"] = (export_onnx(model, directory / "model.onnx", in_channels, input_size), True)
    return files


def artifact_sizes(files: dict[str, tuple[Path, bool]], compressions: tuple[str, ...] = COMPRESSIONS,
                   deploy_variant: str | None = None) -> dict[str, Any]:
    """Sizes of each artifact and of its zip/xz-compressed copy, and which one is deployable.

    Deployable means the smallest lossless file (compressed or not) that loads back to the exact weights, or, when
    the pipeline chose a lossy format (`deploy_variant`, e.g. the int8 ONNX model), the smallest copy of that one.
    """
    rows = []
    for name, (path, lossless) in files.items():
        for compression in (None, *compressions):
            target = path if compression is None else compress_file(path, compression)
            size = os.path.getsize(target)
            rows.append({"variant": name if compression is None else f"{name}+{compression}", "file": str(target),
                         "bytes": size, "mb": round(size / 1e6, 4), "lossless": lossless,
                         "compression": compression})
    candidates = [r for r in rows if (r["variant"].split("+")[0] == deploy_variant if deploy_variant
                                      else r["lossless"])]
    deployable = min(candidates, key=lambda r: r["bytes"])
    for row in rows:
        row["deployable"] = row is deployable
    return {"variants": rows, "deployable": deployable["variant"], "deployable_bytes": deployable["bytes"]}
