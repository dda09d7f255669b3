"""The one batch interface of built-in datasets: `DatasetInfo`, in-memory and on-disk splits, `Dataset`.

`TensorSplit` holds uint8 images in memory; `FolderSplit` decodes an ImageFolder in DataLoader workers. Both answer
`batches(input_size, batch_size, *, shuffle, augment, seed)` and `len()`, the `Split` interface strategies see
(compressor.data.loaders wraps a user's DataLoader in the same interface). `with_calib` carves the calibration split a
dataset loader returns beside train and test.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from compressor._util.device import all_cores
from compressor.errors import CompressorError

SPLIT_SEED = 0
CALIB_FRACTION = 0.1
CALIB_MAX = 2000
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset: classes, channels, native size, normalization."""

    name: str
    classes: tuple[str, ...]
    channels: int
    native_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool = False
    max_shift: int = 0

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)


class TensorSplit:
    """An in-memory split: uint8 images [N, C, H, W] at native size and int64 labels."""

    def __init__(self, info: DatasetInfo, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.info = info
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> TensorSplit:
        """The split restricted to `indices`."""
        index = torch.as_tensor(indices, dtype=torch.long)
        return TensorSplit(self.info, self.images[index], self.labels[index])

    def batches(self, input_size: int, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalized float batches resized to `input_size`, optionally shuffled and augmented."""
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        mean = torch.tensor(self.info.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.info.std).view(1, -1, 1, 1)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            x = self.images[index].float().div_(255.0)
            if augment:
                x = _augment(x, self.info, generator)
            if x.shape[-1] != input_size or x.shape[-2] != input_size:
                x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False)
            yield (x - mean) / std, self.labels[index]


class FolderSplit:
    """A split of an ImageFolder on disk (RGB, ImageNet normalization), decoded and transformed by DataLoader workers.

    Each image's random crop and flip are a function of (seed, image index) alone, so the same seed gives the same
    batches whatever the number of workers, whatever the caller draws from torch's RNG in between, and whichever
    epoch came before. Loaders are kept per (input size, batch size, augment) with persistent workers, so an epoch
    does not pay the workers' start-up again."""

    def __init__(self, info: DatasetInfo, samples: list[tuple[str, int]], workers: int | None = None) -> None:
        self.info = info
        self.samples = samples
        self.labels = torch.tensor([label for _, label in samples], dtype=torch.long)
        self.workers = data_workers(len(samples)) if workers is None else workers
        self._loaders: dict[tuple[int, int, bool], tuple[torch.utils.data.DataLoader, _Keys]] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, indices: np.ndarray) -> FolderSplit:
        """The split restricted to `indices`."""
        return FolderSplit(self.info, [self.samples[i] for i in indices])

    def batches(self, input_size: int, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalized float batches at `input_size` (resize + center crop; random crops when augmenting)."""
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        loader, keys = self._loader(input_size, batch_size, augment)
        keys.keys = [(index, seed) for index in order.tolist()]
        for images, labels, errors in loader:
            failed = next((error for error in errors if error), None)
            if failed:
                raise CompressorError(failed)
            yield images, labels

    def _loader(self, input_size: int, batch_size: int, augment: bool
                ) -> tuple[torch.utils.data.DataLoader, _Keys]:
        key = (input_size, batch_size, augment)
        if key not in self._loaders:
            keys = _Keys()
            images = _FolderImages(self.samples, _folder_transform(self.info, input_size, augment), input_size)
            loader = torch.utils.data.DataLoader(
                images, batch_size=batch_size, sampler=keys, num_workers=self.workers,
                pin_memory=torch.cuda.is_available(), persistent_workers=self.workers > 0,
                generator=torch.Generator().manual_seed(SPLIT_SEED))
            self._loaders[key] = (loader, keys)
        return self._loaders[key]


FOLDER_WORKERS_ENV = "COMPRESSOR_DATA_WORKERS"  # how many DataLoader workers decode an ImageFolder
SMALL_FOLDER = 512  # fewer images than this decode in the main process: workers would cost more than they save


def data_workers(images: int) -> int:
    """DataLoader workers for a folder of `images` images: $COMPRESSOR_DATA_WORKERS if set, else one per core up to
    8 (none for a small folder)."""
    value = os.environ.get(FOLDER_WORKERS_ENV)
    if value is not None:
        try:
            workers = int(value)
        except ValueError:
            workers = -1
        if workers < 0:
            raise CompressorError(f"{FOLDER_WORKERS_ENV} must be a whole number of workers, 0 or more; got {value!r}")
        return workers
    return 0 if images < SMALL_FOLDER else min(8, all_cores())


class _Keys(torch.utils.data.Sampler):
    """The (image index, seed) pairs of the current epoch, set by `FolderSplit.batches` before each one."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class _FolderImages(torch.utils.data.Dataset):
    """Decode and transform one image, its randomness seeded by (seed, index); a failure travels as a message."""

    def __init__(self, samples: list[tuple[str, int]], transform: Any, input_size: int) -> None:
        self.samples, self.transform, self.input_size = samples, transform, input_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int, str]:
        index, seed = key
        path, label = self.samples[index]
        try:
            image = _decode_rgb(path)
        except (OSError, RuntimeError, ValueError) as exc:  # the main process raises it, as one line
            return torch.zeros(3, self.input_size, self.input_size), label, f"cannot read image {path}: {exc}"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 1_000_003 + index)
            return self.transform(image), label, ""


def _decode_rgb(path: str) -> torch.Tensor:
    """An image file as a uint8 RGB tensor [3, H, W]: torchvision's decoders, PIL for the formats they lack."""
    from torchvision.io import ImageReadMode, decode_image

    try:
        return decode_image(path, mode=ImageReadMode.RGB)
    except RuntimeError:
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        with Image.open(path) as image:
            return pil_to_tensor(image.convert("RGB"))


def _folder_transform(info: DatasetInfo, input_size: int, augment: bool) -> Any:
    """torchvision transforms v2 on uint8 tensors: a random resized crop and flip when augmenting, else resize to
    256/224 of the input size and center crop; then scale to [0, 1] and normalize."""
    from torchvision.transforms import v2

    tail = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]
    if augment:
        return v2.Compose([v2.RandomResizedCrop(input_size, scale=(0.35, 1.0), antialias=True),
                           v2.RandomHorizontalFlip(), *tail])
    return v2.Compose([v2.Resize(int(round(input_size * 256 / 224)), antialias=True), v2.CenterCrop(input_size),
                       *tail])


Split = TensorSplit | FolderSplit


@dataclass
class Dataset:
    """A dataset's info and its three splits: train (for training), calib (held out of train), test."""

    info: DatasetInfo
    train: Split
    calib: Split
    test: Split


def _augment(x: torch.Tensor, info: DatasetInfo, generator: torch.Generator) -> torch.Tensor:
    """Random label-preserving shifts (zero padding) and, where allowed, horizontal flips."""
    n, _, h, w = x.shape
    if info.max_shift > 0:
        s = info.max_shift
        padded = F.pad(x, (s, s, s, s))
        offsets = torch.randint(0, 2 * s + 1, (n, 2), generator=generator).tolist()
        x = torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
    if info.hflip:
        flip = torch.rand(n, generator=generator) < 0.5
        x[flip] = x[flip].flip(-1)
    return x


def with_calib(info: DatasetInfo, train: Split, test: Split) -> Dataset:
    """A `Dataset` whose calib split is a seeded, stratified part carved out of `train` (the rest stays train)."""
    n_calib = min(CALIB_MAX, max(info.num_classes, math.ceil(CALIB_FRACTION * len(train))))
    indices = np.arange(len(train))
    keep, calib = train_test_split(indices, test_size=n_calib, stratify=train.labels.numpy(),
                                   random_state=SPLIT_SEED)
    return Dataset(info, train.subset(np.sort(keep)), train.subset(np.sort(calib)), test)


def normalization(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images [N, C, H, W], scaled to [0, 1]."""
    x = images.float().div(255.0)
    return (tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).tolist()))
