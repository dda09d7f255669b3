"""Named image datasets (digits, fashion-mnist, cifar10/100, imagefolder:PATH) as train/calib/test splits."""

from __future__ import annotations

import gzip
import hashlib
import re
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from compressor.errors import CompressorError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DATASET_NAMES = ("digits", "fashion-mnist", "cifar10", "cifar100", "imagefolder:PATH")
SPLIT_SEED = 0
CALIB_FRACTION = 0.1
CALIB_MAX = 2000
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
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
        """Yield normalized float batches at `input_size` (resize + center crop; random crops when augmenting)."""
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
        torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size].tolist()
            images = []
            for i in index:
                path = self.samples[i][0]
                try:
                    with Image.open(path) as image:
                        images.append(transform(image.convert("RGB")))
                except OSError as exc:
                    raise CompressorError(f"cannot read image {path}: {exc}") from exc
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


def _with_calib(info: DatasetInfo, train: Split, test: Split) -> Dataset:
    """Carve a seeded, stratified calibration split out of the training data."""
    n_calib = min(CALIB_MAX, max(info.num_classes, math.ceil(CALIB_FRACTION * len(train))))
    indices = np.arange(len(train))
    keep, calib = train_test_split(indices, test_size=n_calib, stratify=train.labels.numpy(),
                                   random_state=SPLIT_SEED)
    return Dataset(info, train.subset(np.sort(keep)), train.subset(np.sort(calib)), test)


def _normalization(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, scaled to [0, 1]."""
    x = images.float().div(255.0)
    return (tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).tolist()))


def _load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits, split 80/20 stratified with a fixed seed."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=bunch.target,
                                           random_state=SPLIT_SEED)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    mean, std = _normalization(images[train_idx])
    info = DatasetInfo("digits", tuple(str(i) for i in range(10)), 1, 8, mean, std, hflip=False, max_shift=1)
    return _with_calib(info, TensorSplit(info, images[train_idx], labels[train_idx]),
                       TensorSplit(info, images[test_idx], labels[test_idx]))


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise CompressorError(f"cannot read IDX file {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CompressorError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise CompressorError(f"{path} is truncated: expected {int(np.prod(dims))} values for shape {dims}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _find_idx_dir(roots: list[Path]) -> Path | None:
    """The first directory under `roots` holding the four Fashion-MNIST IDX files (gzipped or not)."""
    for root in roots:
        for candidate in (root, root / "fashion-mnist", root / "FashionMNIST" / "raw"):
            if all(_idx_file(candidate, stem) for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
                return candidate
    return None


def _idx_file(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _load_fashion_mnist(data_dir: Path | None, cache_dir: Path, download: bool) -> Dataset:
    """Fashion-MNIST from --data-dir/$COMPRESSOR_DATA, Debian's dataset-fashion-mnist, or torchvision."""
    roots = [p for p in (data_dir, _env_data_dir()) if p is not None] + [DEBIAN_FASHION_MNIST]
    directory = _find_idx_dir(roots)
    if directory is None and download:
        directory = _download_fashion_mnist(cache_dir)
    if directory is None:
        searched = ", ".join(str(p) for p in roots[:-1]) or "(none given)"
        raise CompressorError(
            "fashion-mnist not found: pass --data-dir or set $COMPRESSOR_DATA to a folder with the IDX files "
            f"(searched {searched}), or install Debian's dataset-fashion-mnist (files in {DEBIAN_FASHION_MNIST}), "
            f"or go online so torchvision can download it to {cache_dir}")
    arrays = {stem: _read_idx(_idx_file(directory, stem))  # type: ignore[arg-type]
              for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    train_x = torch.from_numpy(arrays["train-images-idx3-ubyte"].copy()).unsqueeze(1)
    test_x = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].copy()).unsqueeze(1)
    train_y = torch.from_numpy(arrays["train-labels-idx1-ubyte"].astype(np.int64))
    test_y = torch.from_numpy(arrays["t10k-labels-idx1-ubyte"].astype(np.int64))
    info = DatasetInfo("fashion-mnist", FASHION_CLASSES, 1, 28, (0.2860,), (0.3530,), hflip=True, max_shift=2)
    return _with_calib(info, TensorSplit(info, train_x, train_y), TensorSplit(info, test_x, test_y))


def _download_fashion_mnist(cache_dir: Path) -> Path | None:
    """Let torchvision download Fashion-MNIST into the cache; None when offline."""
    from torchvision.datasets import FashionMNIST

    root = cache_dir / "data"
    try:
        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
    except Exception:  # noqa: BLE001 - any download failure means "not available"; the caller explains
        return None
    return _find_idx_dir([root])


def _load_cifar(name: str, data_dir: Path | None, cache_dir: Path, download: bool) -> Dataset:
    """CIFAR-10/100 through torchvision (from --data-dir/$COMPRESSOR_DATA or the cache, downloading if allowed)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    roots = [p for p in (data_dir, _env_data_dir()) if p is not None] + [cache_dir / "data"]
    splits = None
    for root in roots:
        try:
            splits = (cls(str(root), train=True), cls(str(root), train=False))
            break
        except RuntimeError:
            continue
    if splits is None and download:
        try:
            splits = (cls(str(roots[-1]), train=True, download=True), cls(str(roots[-1]), train=False, download=True))
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            raise CompressorError(f"{name} not found in {', '.join(map(str, roots))} and download failed: {exc}")
    if splits is None:
        raise CompressorError(f"{name} not found in {', '.join(map(str, roots))}; go online to download it")
    train, test = splits
    if name == "cifar10":
        mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    else:
        mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    info = DatasetInfo(name, tuple(train.classes), 3, 32, mean, std, hflip=True, max_shift=4)

    def to_split(ds: CIFAR10) -> TensorSplit:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return TensorSplit(info, images, torch.tensor(ds.targets, dtype=torch.long))

    return _with_calib(info, to_split(train), to_split(test))


def _load_imagefolder(path_text: str) -> Dataset:
    """An ImageFolder: PATH/train + PATH/test (or val), else PATH itself split 80/20 stratified."""
    from torchvision.datasets import ImageFolder

    root = Path(path_text).expanduser()
    if not root.is_dir():
        raise CompressorError(f"imagefolder path {root} is not a directory")
    test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)

    def scan(directory: Path) -> ImageFolder:
        try:
            return ImageFolder(str(directory))
        except (FileNotFoundError, RuntimeError) as exc:
            raise CompressorError(f"imagefolder {directory}: {exc}") from exc

    if (root / "train").is_dir() and test_dir is not None:
        train_folder, test_folder = scan(root / "train"), scan(test_dir)
        if train_folder.classes != test_folder.classes:
            raise CompressorError(f"imagefolder {root}: train classes {train_folder.classes} differ from "
                                  f"{test_dir.name} classes {test_folder.classes}")
        train_samples, test_samples = list(train_folder.samples), list(test_folder.samples)
        classes = train_folder.classes
    else:
        folder = scan(root)
        labels = [label for _, label in folder.samples]
        try:
            train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels,
                                                   random_state=SPLIT_SEED)
        except ValueError as exc:
            raise CompressorError(f"imagefolder {root} is too small to split into train and test: {exc}") from exc
        train_samples = [folder.samples[i] for i in sorted(train_idx)]
        test_samples = [folder.samples[i] for i in sorted(test_idx)]
        classes = folder.classes
    if len(classes) < 2:
        raise CompressorError(f"imagefolder {root} has {len(classes)} class(es); a classifier needs at least 2")
    info = DatasetInfo(f"imagefolder:{root.resolve()}", tuple(classes), 3, 224, IMAGENET_MEAN, IMAGENET_STD,
                       hflip=True)
    try:
        return _with_calib(info, FolderSplit(info, train_samples), FolderSplit(info, test_samples))
    except ValueError as exc:
        raise CompressorError(f"imagefolder {root} is too small for a calibration split: {exc}") from exc


def _env_data_dir() -> Path | None:
    value = os.environ.get("COMPRESSOR_DATA")
    return Path(value).expanduser() if value else None


def dataset_slug(name: str) -> str:
    """A file-name-safe form of a dataset name (imagefolder paths become basename + short hash)."""
    if name.startswith("imagefolder:"):
        path = name[len("imagefolder:"):]
        digest = hashlib.sha1(path.encode()).hexdigest()[:8]
        return f"imagefolder-{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(path).name)}-{digest}"
    return name


def default_cache_dir() -> Path:
    """Where baselines and downloads are cached: $COMPRESSOR_CACHE or ~/.cache/compressor."""
    return Path(os.environ.get("COMPRESSOR_CACHE", Path.home() / ".cache" / "compressor")).expanduser()


def list_datasets() -> list[str]:
    """The dataset names `load_dataset` accepts (`imagefolder:PATH` stands for any folder)."""
    return list(DATASET_NAMES)


def load_dataset(name: str, *, data_dir: Path | None = None, cache_dir: Path | None = None,
                 download: bool = True) -> Dataset:
    """Load the dataset called `name` (see DATASET_NAMES) with its train, calib and test splits."""
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    if name == "digits":
        return _load_digits()
    if name == "fashion-mnist":
        return _load_fashion_mnist(data_dir, cache, download)
    if name in ("cifar10", "cifar100"):
        return _load_cifar(name, data_dir, cache, download)
    if name.startswith("imagefolder:") and len(name) > len("imagefolder:"):
        return _load_imagefolder(name[len("imagefolder:"):])
    raise CompressorError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
