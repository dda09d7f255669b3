"""Dataset registry: `@register_dataset("name")` on a loader function, plus `compressor.datasets` entry points.

A loader takes one `DatasetRequest` (the name asked for, the argument of a prefix form, where to look for files,
where to cache, whether it may download) and returns a `Dataset` with train, calib and test splits. A plain name
("digits") matches itself; a prefix registration ("imagefolder", prefix=True) matches "imagefolder:ARG" and passes
ARG on. A third party declares its loaders under the `compressor.datasets` entry point of its own package; they are
imported on first use, and one that fails to import is reported by name (`dataset_plugin_errors`) without breaking
the others. An entry point whose name ends with ":" ("hf:") declares a prefix form; a loader that registers itself
with `@register_dataset` when its module is imported keeps the options it registered with.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, TypeVar

from compressor._util.plugins import load_plugins
from compressor.data.splits import Dataset
from compressor.errors import CompressorError

ENTRY_POINT_GROUP = "compressor.datasets"


@dataclass(frozen=True)
class DatasetRequest:
    """What a dataset loader is asked for.

    `name` is the whole name asked for ("cifar10", "imagefolder:/data/pets"); `arg` the text after "prefix:" for
    a prefix registration (None for a plain name); `data_dir` a folder the user points at (None: the loader's
    own lookup, e.g. $COMPRESSOR_DATA); `cache_dir` where the loader may download and cache; `download` whether it
    may go online.
    """

    name: str
    arg: str | None
    data_dir: Path | None
    cache_dir: Path
    download: bool


DatasetLoader = Callable[[DatasetRequest], Dataset]
L = TypeVar("L", bound=Callable[[DatasetRequest], Dataset])


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its name, loader, whether it is a prefix form, where it came from, a description."""

    name: str
    loader: DatasetLoader
    prefix: bool
    metavar: str
    source: str
    description: str

    @property
    def display(self) -> str:
        """How the name is written by a user: `digits`, or `imagefolder:PATH` for a prefix form."""
        return f"{self.name}:{self.metavar}" if self.prefix else self.name


_REGISTRY: dict[str, DatasetEntry] = {}
_PLUGIN_ERRORS: dict[str, str] = {}
_discovered = False


def _entry(name: str, loader: DatasetLoader, prefix: bool, metavar: str, source: str) -> DatasetEntry:
    if not name or ":" in name or name != name.strip():
        raise CompressorError(f"dataset name {name!r} must be non-empty, without ':' or surrounding spaces "
                              "(register a prefix form with prefix=True)")
    if not callable(loader):
        raise TypeError(f"dataset {name!r} needs a loader function (DatasetRequest -> Dataset); got {loader!r}")
    doc = (getattr(loader, "__doc__", None) or "").strip()
    return DatasetEntry(name, loader, prefix, metavar, source, doc.splitlines()[0] if doc else "")


def _add(entry: DatasetEntry) -> None:
    known = _REGISTRY.get(entry.name)
    if known is not None and known.loader is not entry.loader:
        raise CompressorError(f"dataset name {entry.name!r} is already registered by {known.source}; "
                              f"pick another name for {entry.source}")
    _REGISTRY[entry.name] = entry


def register_dataset(name: str, *, prefix: bool = False, metavar: str = "PATH") -> Callable[[L], L]:
    """Decorator registering a loader `(DatasetRequest) -> Dataset` under `name`.

    With `prefix=True` the loader answers every "name:ARG" (ARG in `request.arg`) and is listed as
    "name:METAVAR". Registering a name that another loader holds is an error.
    """

    def decorator(loader: L) -> L:
        source = f"{getattr(loader, '__module__', '?')}.{getattr(loader, '__qualname__', repr(loader))}"
        _add(_entry(name, loader, prefix, metavar, source))
        return loader

    return decorator


def _discover() -> None:
    """Import every `compressor.datasets` entry point, once (the built-ins register when compressor.data loads)."""
    global _discovered
    if _discovered:
        return
    _discovered = True

    def split_name(point: EntryPoint) -> tuple[str, bool]:
        prefix = point.name.endswith(":")
        return (point.name[:-1] if prefix else point.name), prefix

    def taken_by(point: EntryPoint) -> str | None:
        name, _ = split_name(point)
        known = _REGISTRY.get(name)
        return known.source if known is not None and not known.source.startswith(point.module + ".") else None

    def register(point: EntryPoint, loader: Any) -> None:
        name, prefix = split_name(point)
        if name not in _REGISTRY:  # the module may have registered it with @register_dataset
            _add(_entry(name, loader, prefix, "PATH", f"{point.module}.{point.attr}"))

    _PLUGIN_ERRORS.update(load_plugins(entry_points(group=ENTRY_POINT_GROUP), register, taken_by))


def dataset_entries() -> list[DatasetEntry]:
    """Every registered dataset, built-ins first, in registration order."""
    _discover()
    return list(_REGISTRY.values())


def list_datasets() -> list[str]:
    """The dataset names `load_dataset` accepts, prefix forms written `name:PATH` (e.g. `imagefolder:PATH`)."""
    return [entry.display for entry in dataset_entries()]


def dataset_plugin_errors() -> dict[str, str]:
    """`compressor.datasets` entry points that failed to load, by name, with the reason."""
    _discover()
    return dict(_PLUGIN_ERRORS)


def _lookup(name: str) -> tuple[DatasetEntry, str | None]:
    _discover()
    entry = _REGISTRY.get(name)
    if entry is not None and not entry.prefix:
        return entry, None
    head, colon, arg = name.partition(":")
    entry = _REGISTRY.get(head)
    if entry is not None and entry.prefix:
        if colon and arg:
            return entry, arg
        raise CompressorError(f"dataset {head!r} needs an argument: write {entry.display}")
    failed = _PLUGIN_ERRORS.get(name) or _PLUGIN_ERRORS.get(f"{head}:")
    hint = f" (its plugin failed to load: {failed})" if failed else ""
    raise CompressorError(f"unknown dataset {name!r}{hint}; choose one of: {', '.join(list_datasets())}")


def load_dataset(name: str, *, data_dir: Path | None = None, cache_dir: Path | None = None,
                 download: bool = True) -> Dataset:
    """Load the dataset called `name` (one of `list_datasets()`) with its train, calib and test splits."""
    entry, arg = _lookup(name)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    dataset = entry.loader(DatasetRequest(name, arg, data_dir, cache, download))
    if not isinstance(dataset, Dataset):
        raise CompressorError(f"dataset loader {entry.source} for {name!r} returned {type(dataset).__name__}, "
                              "not a compressor.data.Dataset")
    return dataset


def dataset_slug(name: str) -> str:
    """A file-name-safe form of a dataset name (a prefix form's argument becomes its basename + short hash)."""
    if ":" in name:
        head, _, arg = name.partition(":")
        digest = hashlib.sha1(arg.encode()).hexdigest()[:8]
        return f"{_safe(head)}-{_safe(Path(arg).name)}-{digest}"
    if _safe(name) != name:
        return f"{_safe(name)}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def default_cache_dir() -> Path:
    """Where baselines and downloads are cached: $COMPRESSOR_CACHE or ~/.cache/compressor."""
    return Path(os.environ.get("COMPRESSOR_CACHE", Path.home() / ".cache" / "compressor")).expanduser()
