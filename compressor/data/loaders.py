"""Data as strategies and training see it: any iterable of (inputs, labels) batches behind the Split interface.

Built-in datasets give `TensorSplit` / `FolderSplit` (compressor.data); a user's torch DataLoader is wrapped in
`LoaderSplit`; grayscale data feeding a 3-channel model goes through `RepeatChannels`. All of them answer
`batches(input_size, batch_size, *, shuffle, augment, seed)` and `len()`, so no strategy knows where data came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from compressor.errors import CompressorError

Batch = tuple[torch.Tensor, torch.Tensor]


class Split(Protocol):
    """A source of labelled image batches: normalized float inputs [N, C, H, W] and int64 labels [N]."""

    def __len__(self) -> int: ...

    def batches(self, input_size: int, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                seed: int = 0) -> Iterator[Batch]: ...


def _as_batch(item: Any, position: int) -> Batch:
    """`item` as (inputs, labels) tensors, or one line saying what a loader must yield."""
    if isinstance(item, (tuple, list)) and len(item) >= 2 and isinstance(item[0], torch.Tensor):
        x, y = item[0], item[1]
        y = y if isinstance(y, torch.Tensor) else torch.as_tensor(y)
        if x.ndim == 4 and y.ndim == 1 and len(x) == len(y):
            return x.float(), y.long()
    shape = f"{type(item).__name__}" + (f" of {[getattr(v, 'shape', type(v).__name__) for v in item]}"
                                        if isinstance(item, (tuple, list)) else "")
    raise CompressorError(f"loader batch {position} must be (inputs [N, C, H, W], labels [N]) tensors; got {shape}")


def resize(x: torch.Tensor, input_size: int) -> torch.Tensor:
    """`x` resized (bilinear) to input_size × input_size unless it already is."""
    if x.shape[-1] == input_size and x.shape[-2] == input_size:
        return x
    return F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)


def rebatch(batches: Iterable[Batch], batch_size: int) -> Iterator[Batch]:
    """The same samples in the same order, in batches of `batch_size` (the last one may be smaller)."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    held = 0
    for x, y in batches:
        xs.append(x)
        ys.append(y)
        held += len(y)
        while held >= batch_size:
            x_all, y_all = torch.cat(xs), torch.cat(ys)
            yield x_all[:batch_size], y_all[:batch_size]
            xs, ys, held = [x_all[batch_size:]], [y_all[batch_size:]], held - batch_size
    if held:
        yield torch.cat(xs), torch.cat(ys)


class LoaderSplit:
    """A user's iterable of (inputs, labels) batches (e.g. a torch DataLoader) seen as a Split.

    The loader owns order and augmentation: `shuffle`, `augment` and `seed` are the loader's business (a
    DataLoader with `shuffle=True` reshuffles each pass). Inputs are resized to the requested size when they
    differ and regrouped into the requested batch size.
    """

    def __init__(self, loader: Iterable[Any], name: str = "loader") -> None:
        if isinstance(loader, torch.Tensor) or not hasattr(loader, "__iter__"):
            raise CompressorError(f"a loader must be an iterable of (inputs, labels) batches; got "
                                  f"{type(loader).__name__}")
        self.loader = loader
        self.name = name
        self.batch_size: int | None = getattr(loader, "batch_size", None)  # training keeps the loader's batches
        self._length: int | None = None

    def raw_batches(self) -> Iterator[Batch]:
        """The loader's batches as float inputs and int64 labels, checked."""
        for position, item in enumerate(self.loader):
            yield _as_batch(item, position)

    def __len__(self) -> int:
        if self._length is None:
            dataset = getattr(self.loader, "dataset", None)
            try:
                self._length = len(dataset) if dataset is not None else sum(len(y) for _, y in self.raw_batches())
            except TypeError:
                self._length = sum(len(y) for _, y in self.raw_batches())
        return self._length

    def batches(self, input_size: int, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                seed: int = 0) -> Iterator[Batch]:
        """The loader's samples at `input_size`, in batches of `batch_size`."""
        yield from rebatch(((resize(x, input_size), y) for x, y in self.raw_batches()), batch_size)

    def first_batch(self) -> Batch:
        """The loader's first batch (for input shape and cache keys), or one line if it is empty."""
        for batch in self.raw_batches():
            return batch
        raise CompressorError(f"{self.name} loader yields no batches")


class RepeatChannels:
    """A grayscale split fed to a model that takes `channels` inputs: the one channel is repeated."""

    def __init__(self, split: Split, channels: int = 3) -> None:
        self.split = split
        self.channels = channels
        self.info = getattr(split, "info", None)
        self.labels = getattr(split, "labels", None)

    def __len__(self) -> int:
        return len(self.split)

    def batches(self, input_size: int, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                seed: int = 0) -> Iterator[Batch]:
        """The wrapped split's batches with the channel repeated."""
        for x, y in self.split.batches(input_size, batch_size, shuffle=shuffle, augment=augment, seed=seed):
            yield x.expand(-1, self.channels, -1, -1).contiguous(), y


def split_key(split: Split, name: str) -> str:
    """A short identity of a split for cache keys: its name, size and a hash of its first samples."""
    digest = hashlib.sha1(f"{name}|{len(split)}".encode())
    for x, y in split.batches(_first_size(split), 16):
        digest.update(x.numpy().tobytes())
        digest.update(y.numpy().tobytes())
        break
    return f"{name}:{len(split)}:{digest.hexdigest()[:16]}"


def _first_size(split: Split) -> int:
    """The native input size of a split (the first batch's width), so hashing does not resize."""
    if isinstance(split, LoaderSplit):
        return int(split.first_batch()[0].shape[-1])
    info = getattr(split, "info", None)
    return int(info.native_size) if info is not None else 32
