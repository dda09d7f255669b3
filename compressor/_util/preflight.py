"""Checks that fail in a second instead of after hours: outputs can be written and their disk has room.

A path that cannot be written is a usage error (CompressorError, exit code 2); a disk without room for the output
is a runtime failure (RuntimeFailure, exit code 1).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from compressor.errors import CompressorError, RuntimeFailure

MB = 1_000_000


def _check(directory: Path, need_bytes: int, failing: str) -> None:
    """Raise, prefixed with `failing`, unless `need_bytes` can be written into `directory`; a missing directory is
    probed at its nearest existing ancestor, so the check leaves nothing behind."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise CompressorError(f"{failing}: {existing} is a file, not a directory")
    try:
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        error = RuntimeFailure if exc.errno in (errno.ENOSPC, errno.EDQUOT) else CompressorError
        raise error(f"{failing}: {exc.strerror or exc} ({existing})") from None
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        raise RuntimeFailure(f"{failing}: only {free / MB:.0f} MB free on its disk, and this needs about "
                             f"{need_bytes / MB:.0f} MB")


def ensure_writable_dir(directory: Path, what: str, need_bytes: int = 0) -> None:
    """Fail now unless files can be written in `directory` (or where it would be created) and `need_bytes` fit."""
    _check(Path(directory), need_bytes, f"cannot write {what} {directory}")


def ensure_writable_file(path: Path, what: str, need_bytes: int = 0) -> None:
    """Fail now unless the file `path` can be created (its directory writable, with `need_bytes` free)."""
    path = Path(path)
    if path.is_dir():
        raise CompressorError(f"cannot write {what} {path}: {path} is a directory; give a file name")
    _check(path.parent, need_bytes, f"cannot write {what} {path}")


def measurement_bytes(n_params: int, compressions: int, roles: int = 2) -> int:
    """Scratch space `compressor run` needs: per model fp32, fp16, sparse and ONNX files, each also compressed."""
    return int(roles * 3.5 * 4 * n_params * (1 + compressions))
