"""Safe file IO: atomic writes (a reader never sees a half-written file) and torch reads that never run code.

A write that fails (a full disk, a lost mount, a read-only file system) raises RuntimeFailure (exit code 1) naming
the file; the target keeps its previous content.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from compressor.errors import CompressorError, RuntimeFailure

STALE_AFTER_S = 24 * 3600  # a writer killed mid-write leaves its temporary directory; none lives this long
TORCH_WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "file write failed")  # torch.save's I/O errors


def remove_stale_temporaries(target: Path) -> None:
    """Delete temporary directories that a killed writer of `target` left behind (those older than a day)."""
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        try:
            if leftover.is_dir() and time.time() - leftover.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass  # another process removed it first


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed onto `path`.

    The temporary file has the target's own name (inside a hidden temporary directory) because torch's zip format
    records the file name in every entry: a different temporary name would change the file's size. An OSError
    while preparing, writing or moving the file becomes a RuntimeFailure.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise _write_failure(target, exc) from exc
    tmp = tmp_dir / target.name
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise _write_failure(target, exc) from exc
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _write_failure(target: Path, exc: BaseException) -> RuntimeFailure:
    reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0] or type(exc).__name__
    return RuntimeFailure(f"cannot write {target}: {reason}")


def write_atomic(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `path` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def save_torch_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """`torch.save` to `path` atomically (torch's own write errors, e.g. on a full disk, become RuntimeFailure)."""
    def save(tmp: Path) -> None:
        try:
            torch.save(obj, tmp)
        except RuntimeError as exc:
            if any(marker in str(exc) for marker in TORCH_WRITE_FAILURES):
                raise _write_failure(Path(path), exc) from exc
            raise

    return write_atomic(path, save)


def write_json_atomic(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write `obj` as indented JSON to `path` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


def read_cached_json(path: Path | None) -> Any:
    """The parsed JSON of a cache entry, or None when there is none or it is unreadable (it is then recomputed)."""
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def model_fingerprint(model: torch.nn.Module, facts: list[Any]) -> str:
    """A short hash of every weight and buffer of `model` and the `facts` a cached result of it depends on."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(json.dumps(facts).encode())
    return digest.hexdigest()[:20]


def load_torch_file(path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """`torch.load(weights_only=True)`: plain data and tensors only; anything else fails in one line, unexecuted."""
    path = Path(path)
    if not path.is_file():
        raise CompressorError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        globals_line = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), None)
        if globals_line is None:
            raise CompressorError(f"cannot read {what} {path}: empty, truncated or not a torch file") from exc
        raise CompressorError(f"refusing to load {what} {path}: it holds objects other than tensors and plain data, "
                              f"and files load with weights_only=True ({globals_line})") from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CompressorError(f"cannot read {what} {path}: empty, truncated or not a torch file ({first})") from exc


def read_toml(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The TOML document in `path` (`what` names it in errors: "sweep file"); one-line CompressorError otherwise."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CompressorError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CompressorError(f"{what} {path} is not valid TOML: {exc}") from None
