"""Atomic file writes: a reader never sees a half-written checkpoint, report or cache entry."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    The temporary file has the target's own name (inside a hidden temporary directory) because torch's zip format
    records the file name in every entry: a different temporary name would change the file's size.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp = tmp_dir / target.name
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_atomic(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `path` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def save_torch_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """`torch.save` to `path` atomically."""
    return write_atomic(path, lambda tmp: torch.save(obj, tmp))


def write_json_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write `obj` as indented JSON to `path` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n"))
