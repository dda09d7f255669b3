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
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import TypeVar

from compressor._util.registry import EntryPointRules, Registry
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


def _entry(name: str, loader: DatasetLoader, prefix: bool, metavar: str, source: str) -> DatasetEntry:
    if not name or ":" in name or name != name.strip():
        raise CompressorError(f"dataset name {name!r} must be non-empty, without ':' or surrounding spaces "
                              "(register a prefix form with prefix=True)")
    if not callable(loader):
        raise TypeError(f"dataset {name!r} needs a loader function (DatasetRequest -> Dataset); got {loader!r}")
    doc = (getattr(loader, "__doc__", None) or "").strip()
    return DatasetEntry(name, loader, prefix, metavar, source, doc.splitlines()[0] if doc else "")


def _point_name(point: EntryPoint) -> str:
    """An entry point named "hf:" declares the prefix form "hf"."""
    return point.name.removesuffix(":")


DATASETS: Registry[DatasetEntry] = Registry(
    "dataset", ENTRY_POINT_GROUP,
    EntryPointRules(entry=lambda point, loader: _entry(_point_name(point), loader, point.name.endswith(":"), "PATH",
                                                       f"{point.module}.{point.attr}"),
                    own=lambda point, known: known.source.startswith(point.module + "."), name=_point_name),
    source=lambda entry: entry.source, identity=lambda entry: entry.loader)


def register_dataset(name: str, *, prefix: bool = False, metavar: str = "PATH") -> Callable[[L], L]:
    """Decorator registering a loader `(DatasetRequest) -> Dataset` under `name`.

    With `prefix=True` the loader answers every "name:ARG" (ARG in `request.arg`) and is listed as
    "name:METAVAR". Registering a name that another loader holds is an error.
    """

    def decorator(loader: L) -> L:
        source = f"{getattr(loader, '__module__', '?')}.{getattr(loader, '__qualname__', repr(loader))}"
        DATASETS.add(name, _entry(name, loader, prefix, metavar, source))
        return loader

    return decorator


def dataset_entries() -> list[DatasetEntry]:
    """Every registered dataset, built-ins first, in registration order."""
    return DATASETS.entries()


def list_datasets(pattern: str = "*") -> list[str]:
    """The dataset names `load_dataset` accepts, prefix forms written `name:PATH` (e.g. `imagefolder:PATH`)."""
    return [entry.display for entry in DATASETS.entries(pattern)]


def dataset_plugin_errors() -> dict[str, str]:
    """`compressor.datasets` entry points that failed to load, by name, with the reason."""
    return DATASETS.plugin_errors()


def _lookup(name: str) -> tuple[DatasetEntry, str | None]:
    entry = DATASETS.find(name)
    if entry is not None and not entry.prefix:
        return entry, None
    head, colon, arg = name.partition(":")
    entry = DATASETS.find(head)
    if entry is not None and entry.prefix:
        if colon and arg:
            return entry, arg
        raise CompressorError(f"dataset {head!r} needs an argument: write {entry.display}")
    hint = DATASETS.failure_hint(name, f"{head}:")
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
