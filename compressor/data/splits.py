"""The one batch interface of built-in datasets: `DatasetInfo`, in-memory and on-disk splits, `Dataset`.

`TensorSplit` holds uint8 images in memory; `FolderSplit` reads an ImageFolder image by image. Both answer
`batches(input_size, batch_size, *, shuffle, augment, seed)` and `len()`, the `Split` interface strategies see
(compressor.data.loaders wraps a user's DataLoader in the same interface). `with_calib` carves the calibration split a
dataset loader returns beside train and test.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

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
    """A split of an ImageFolder read from disk image by image (RGB, ImageNet normalization)."""

    def __init__(self, info: DatasetInfo, samples: list[tuple[str, int]]) -> None:
        self.info = info
        self.samples = samples
        self.labels = torch.tensor([label for _, label in samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, indices: np.ndarray) -> FolderSplit:
        """The split restricted to `indices`."""
        return FolderSplit(self.info, [self.samples[i] for i in indices])

    def batches(self, input_size: int, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalized float batches at `input_size` (resize + center crop; random crops when augmenting).

        torchvision's random transforms draw from torch's global generator: each batch is transformed inside
        `fork_rng` from this iterator's own generator state (seeded with `seed`), so the caller's global RNG is
        never reseeded or advanced, and the same seed gives the same batches whatever the caller draws in between.
        """
        from PIL import Image
        from torchvision import transforms as T

        if augment:
            transform = T.Compose([T.RandomResizedCrop(input_size, scale=(0.35, 1.0)), T.RandomHorizontalFlip(),
                                   T.ToTensor(), T.Normalize(self.info.mean, self.info.std)])
        else:
            transform = T.Compose([T.Resize(int(round(input_size * 256 / 224))), T.CenterCrop(input_size),
                                   T.ToTensor(), T.Normalize(self.info.mean, self.info.std)])
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        rng_state = torch.Generator().manual_seed(seed).get_state()  # = the global state after manual_seed(seed)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size].tolist()
            images = []
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(rng_state)
                for i in index:
                    path = self.samples[i][0]
                    try:
                        with Image.open(path) as image:
                            images.append(transform(image.convert("RGB")))
                    except OSError as exc:
                        raise CompressorError(f"cannot read image {path}: {exc}") from exc
                rng_state = torch.get_rng_state()
            yield torch.stack(images), self.labels[index]


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
