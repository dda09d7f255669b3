"""The built-in datasets: scikit-learn's digits, Fashion-MNIST, CIFAR-10/100 and `imagefolder:PATH`.

Each loader is registered with `register_dataset` and takes a `DatasetRequest`; importing compressor.data imports
this module, so the built-ins are always there.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from compressor.data.registry import DatasetRequest, register_dataset
from compressor.data.splits import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SPLIT_SEED,
    Dataset,
    DatasetInfo,
    FolderSplit,
    TensorSplit,
    normalization,
    with_calib,
)
from compressor.errors import CompressorError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@register_dataset("digits")
def _load_digits(request: DatasetRequest) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), split 80/20 stratified with a fixed seed."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=bunch.target,
                                           random_state=SPLIT_SEED)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    mean, std = normalization(images[train_idx])
    info = DatasetInfo("digits", tuple(str(i) for i in range(10)), 1, 8, mean, std, hflip=False, max_shift=1)
    return with_calib(info, TensorSplit(info, images[train_idx], labels[train_idx]),
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


@register_dataset("fashion-mnist")
def _load_fashion_mnist(request: DatasetRequest) -> Dataset:
    """Fashion-MNIST from --data-dir/$COMPRESSOR_DATA, Debian's dataset-fashion-mnist, or torchvision."""
    data_dir, cache_dir, download = request.data_dir, request.cache_dir, request.download
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
    return with_calib(info, TensorSplit(info, train_x, train_y), TensorSplit(info, test_x, test_y))


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


def _load_cifar(request: DatasetRequest) -> Dataset:
    """CIFAR-10/100 through torchvision (from --data-dir/$COMPRESSOR_DATA or the cache, downloading if allowed)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    name, data_dir, cache_dir, download = request.name, request.data_dir, request.cache_dir, request.download
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
            raise CompressorError(
                f"{name} not found in {', '.join(map(str, roots))} and download failed: {exc}") from exc
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

    return with_calib(info, to_split(train), to_split(test))


register_dataset("cifar10")(_load_cifar)
register_dataset("cifar100")(_load_cifar)


@register_dataset("imagefolder", prefix=True, metavar="PATH")
def _load_imagefolder(request: DatasetRequest) -> Dataset:
    """An ImageFolder: PATH/train + PATH/test (or val), else PATH itself split 80/20 stratified."""
    from torchvision.datasets import ImageFolder

    root = Path(request.arg or "").expanduser()
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
        return with_calib(info, FolderSplit(info, train_samples), FolderSplit(info, test_samples))
    except ValueError as exc:
        raise CompressorError(f"imagefolder {root} is too small for a calibration split: {exc}") from exc


def _env_data_dir() -> Path | None:
    value = os.environ.get("COMPRESSOR_DATA")
    return Path(value).expanduser() if value else None
