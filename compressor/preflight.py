"""Checks that fail in a second instead of after hours: outputs can be written and their disk has room."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from compressor.errors import CompressorError

MB = 1_000_000


def _problem(directory: Path, need_bytes: int) -> str | None:
    """Why `need_bytes` cannot be written into `directory`, or None; a missing directory is probed at its nearest
    existing ancestor, so the check leaves nothing behind."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        return f"{exc.strerror or exc} ({existing})"
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        return f"only {free / MB:.0f} MB free on its disk, and this needs about {need_bytes / MB:.0f} MB"
    return None


def ensure_writable_dir(directory: Path, what: str, need_bytes: int = 0) -> None:
    """Fail now unless files can be written in `directory` (or where it would be created) and `need_bytes` fit."""
    problem = _problem(Path(directory), need_bytes)
    if problem:
        raise CompressorError(f"cannot write {what} {directory}: {problem}")


def ensure_writable_file(path: Path, what: str, need_bytes: int = 0) -> None:
    """Fail now unless the file `path` can be created (its directory writable, with `need_bytes` free)."""
    path = Path(path)
    problem = f"{path} is a directory; give a file name" if path.is_dir() else _problem(path.parent, need_bytes)
    if problem:
        raise CompressorError(f"cannot write {what} {path}: {problem}")


def measurement_bytes(n_params: int, compressions: int, roles: int = 2) -> int:
    """Scratch space `compressor run` needs: per model fp32, fp16, sparse and ONNX files, each also compressed."""
    return int(roles * 3.5 * 4 * n_params * (1 + compressions))
