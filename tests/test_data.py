"""Datasets: seeded stratified splits, transforms to the model's input size, the fashion-mnist lookup order."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from compressor import data
from compressor.data import Dataset, load_dataset
from compressor.errors import CompressorError


def test_digits_splits_are_disjoint_stratified_and_complete(digits: Dataset) -> None:
    assert (len(digits.train), len(digits.calib), len(digits.test)) == (1293, 144, 360)
    assert digits.info.num_classes == 10 and digits.info.channels == 1 and digits.info.native_size == 8
    for split in (digits.train, digits.calib, digits.test):
        counts = np.bincount(split.labels.numpy(), minlength=10)
        assert counts.min() >= 0.8 * counts.mean()
    rows = {tuple(x.flatten().tolist()) + (int(y),) for split in (digits.train, digits.calib, digits.test)
            for x, y in zip(split.images, split.labels)}
    assert len(rows) >= 1797 - 10  # a handful of digits images are exact duplicates in sklearn's data


def test_digits_split_is_the_same_every_time(digits: Dataset) -> None:
    again = load_dataset("digits")
    assert torch.equal(again.test.images, digits.test.images)
    assert torch.equal(again.calib.labels, digits.calib.labels)


def test_batches_are_normalized_and_resized(digits: Dataset) -> None:
    x, y = next(digits.train.batches(32, 64))
    assert x.shape == (64, 1, 32, 32) and y.shape == (64,)
    full = torch.cat([b for b, _ in digits.train.batches(8, 2000)])
    assert abs(float(full.mean())) < 1e-3 and abs(float(full.std()) - 1) < 1e-2


def test_augmented_shuffled_batches_keep_shapes_and_labels_vary_with_seed(digits: Dataset) -> None:
    a = next(digits.train.batches(16, 32, shuffle=True, augment=True, seed=1))
    b = next(digits.train.batches(16, 32, shuffle=True, augment=True, seed=2))
    assert a[0].shape == (32, 1, 16, 16)
    assert not torch.equal(a[1], b[1])


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion(directory: Path, n_train: int = 200, n_test: int = 50) -> None:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    _write_idx(directory / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (n_train, 28, 28)))
    _write_idx(directory / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    _write_idx(directory / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (n_test, 28, 28)))
    _write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)


def test_fashion_mnist_is_read_from_data_dir_first(tmp_path: Path) -> None:
    _fake_fashion(tmp_path)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert len(ds.train) + len(ds.calib) == 200 and len(ds.test) == 50
    assert ds.info.classes[0] == "T-shirt/top" and ds.info.native_size == 28


def test_fashion_mnist_missing_everywhere_names_all_three_ways(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    monkeypatch.delenv("COMPRESSOR_DATA", raising=False)
    with pytest.raises(CompressorError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty", download=False)
    message = str(info.value)
    assert "--data-dir" in message and "dataset-fashion-mnist" in message and "torchvision" in message


def test_truncated_idx_file_is_refused(tmp_path: Path) -> None:
    _fake_fashion(tmp_path)
    raw = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(CompressorError, match="truncated"):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package(monkeypatch) -> None:
    monkeypatch.delenv("COMPRESSOR_DATA", raising=False)
    ds = load_dataset("fashion-mnist", download=False)
    assert (len(ds.train), len(ds.calib), len(ds.test)) == (58000, 2000, 10000)
    assert ds.train.images.shape[1:] == (1, 28, 28)


def _image_folder(root: Path, classes: list[str], per_class: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_imagefolder_is_split_and_resized_to_input_size(tmp_path: Path) -> None:
    _image_folder(tmp_path, ["cat", "dog", "fox"], per_class=10)
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.info.classes == ("cat", "dog", "fox") and ds.info.channels == 3
    assert len(ds.train) + len(ds.calib) + len(ds.test) == 30
    x, y = next(ds.test.batches(40, 4))
    assert x.shape == (4, 3, 40, 40)


def test_imagefolder_with_one_class_is_refused(tmp_path: Path) -> None:
    _image_folder(tmp_path, ["only"], per_class=10)
    with pytest.raises(CompressorError, match="1 class"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(CompressorError, match="unknown dataset 'mnist'; choose one of: digits, fashion-mnist"):
        load_dataset("mnist")
