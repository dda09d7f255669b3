"""Datasets: seeded stratified splits, transforms to the model's input size, the fashion-mnist lookup order, the
dataset registry and its entry points, and splits that leave the caller's global RNG alone."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
import torch

from compressor import data
from compressor.data import Dataset, DatasetInfo, DatasetRequest, TensorSplit, list_datasets, load_dataset
from compressor.data import registry as data_registry
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
    monkeypatch.setattr(data.builtin, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
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


def _folder_split(root: Path, workers: int) -> data.FolderSplit:
    info = DatasetInfo("imagefolder:x", ("cat", "dog"), 3, 224, data.splits.IMAGENET_MEAN, data.splits.IMAGENET_STD)
    samples = [(str(path), int(path.parent.name == "dog")) for path in sorted(root.rglob("*.png"))]
    return data.FolderSplit(info, samples, workers=workers)


def _epoch(split: data.FolderSplit, seed: int) -> list[torch.Tensor]:
    return [x for x, _ in split.batches(16, 4, shuffle=True, augment=True, seed=seed)]


def test_folder_batches_depend_on_the_seed_alone_not_on_workers_or_the_callers_rng(tmp_path: Path) -> None:
    _image_folder(tmp_path, ["cat", "dog"], per_class=6)
    alone, workers = _folder_split(tmp_path, 0), _folder_split(tmp_path, 2)
    first = _epoch(alone, seed=3)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    with_workers = _epoch(workers, seed=3)
    assert torch.rand(1) == before, "the caller's global RNG is neither reseeded nor advanced"
    assert all(torch.equal(a, b) for a, b in zip(first, with_workers, strict=True)), "2 workers, the same batches"
    _epoch(workers, seed=4)  # another epoch in between changes nothing for seed 3
    assert all(torch.equal(a, b) for a, b in zip(first, _epoch(workers, seed=3), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, _epoch(alone, seed=4), strict=True))


def test_an_unreadable_image_read_by_a_worker_is_one_line_naming_it(tmp_path: Path) -> None:
    _image_folder(tmp_path, ["cat", "dog"], per_class=4)
    (tmp_path / "dog" / "2.png").write_bytes(b"not an image")
    with pytest.raises(CompressorError, match=r"^cannot read image .*dog/2\.png: ") as info:
        list(_folder_split(tmp_path, 2).batches(16, 4))
    assert "\n" not in str(info.value)


def test_the_worker_count_comes_from_the_environment_or_the_folder_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.splits.FOLDER_WORKERS_ENV, raising=False)
    assert data.splits.data_workers(10) == 0, "a small folder decodes in the main process"
    assert data.splits.data_workers(100_000) >= 1
    monkeypatch.setenv(data.splits.FOLDER_WORKERS_ENV, "3")
    assert data.splits.data_workers(10) == 3
    monkeypatch.setenv(data.splits.FOLDER_WORKERS_ENV, "many")
    with pytest.raises(CompressorError, match="COMPRESSOR_DATA_WORKERS must be a whole number"):
        data.splits.data_workers(10)


def test_imagefolder_with_one_class_is_refused(tmp_path: Path) -> None:
    _image_folder(tmp_path, ["only"], per_class=10)
    with pytest.raises(CompressorError, match="1 class"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(CompressorError, match="unknown dataset 'mnist'; choose one of: digits, fashion-mnist"):
        load_dataset("mnist")


def test_unknown_dataset_lists_every_registered_one_on_one_line() -> None:
    with pytest.raises(CompressorError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith("choose one of: digits, fashion-mnist, cifar10, cifar100, imagefolder:PATH")


def test_list_datasets_is_the_registry() -> None:
    assert list_datasets() == ["digits", "fashion-mnist", "cifar10", "cifar100", "imagefolder:PATH"]


def test_a_prefix_dataset_without_its_argument_says_how_to_write_it() -> None:
    for name in ("imagefolder", "imagefolder:"):
        with pytest.raises(CompressorError, match="write imagefolder:PATH"):
            load_dataset(name)


@pytest.fixture
def registry() -> Iterator[list[EntryPoint]]:
    """The dataset registry, restored after the test; the entry points the test appends stand in for installed ones."""
    found: list[EntryPoint] = []
    with data_registry.DATASETS.isolated(found):
        yield found


def _tiny(request: DatasetRequest) -> Dataset:
    """Sixteen 4x4 images in two classes."""
    info = DatasetInfo(request.name, ("a", "b"), 1, 4, (0.5,), (0.25,))
    images = torch.arange(16 * 16, dtype=torch.uint8).reshape(16, 1, 4, 4)
    labels = torch.arange(16) % 2
    split = TensorSplit(info, images, labels)
    return Dataset(info, split, split.subset(np.arange(4)), split.subset(np.arange(4, 8)))


def test_a_registered_dataset_loads_by_name_and_is_listed(registry, tmp_path: Path) -> None:
    seen: list[DatasetRequest] = []

    @data.register_dataset("tiny")
    def load(request: DatasetRequest) -> Dataset:
        """Tiny test data."""
        seen.append(request)
        return _tiny(request)

    ds = load_dataset("tiny", data_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)
    assert ds.info.name == "tiny" and len(ds.train) == 16
    assert seen == [DatasetRequest("tiny", None, tmp_path, tmp_path / "cache", False)]
    assert list_datasets()[-1] == "tiny"
    assert next(e for e in data.dataset_entries() if e.name == "tiny").description == "Tiny test data."


def test_a_prefix_dataset_gets_the_text_after_its_prefix(registry) -> None:
    args: list[str | None] = []

    @data.register_dataset("synthetic", prefix=True, metavar="N")
    def load(request: DatasetRequest) -> Dataset:
        args.append(request.arg)
        return _tiny(request)

    assert load_dataset("synthetic:12:x").info.name == "synthetic:12:x"
    assert args == ["12:x"]
    assert "synthetic:N" in list_datasets()


def test_registering_a_name_twice_is_an_error(registry) -> None:
    data.register_dataset("tiny")(_tiny)
    data.register_dataset("tiny")(_tiny)  # the same loader again (a re-imported module) is harmless
    with pytest.raises(CompressorError, match="dataset name 'tiny' is already registered by"):
        data.register_dataset("tiny")(lambda request: _tiny(request))
    with pytest.raises(CompressorError, match="'digits' is already registered"):
        data.register_dataset("digits")(_tiny)
    with pytest.raises(CompressorError, match="'imagefolder' is already registered"):
        data.register_dataset("imagefolder")(_tiny)


def test_a_loader_must_return_a_dataset(registry) -> None:
    data.register_dataset("nothing")(lambda request: None)
    with pytest.raises(CompressorError, match="returned NoneType, not a compressor.data.Dataset"):
        load_dataset("nothing")


def test_entry_points_are_discovered_and_a_broken_one_is_reported_by_name(registry) -> None:
    group = data.ENTRY_POINT_GROUP
    registry.extend([
        EntryPoint("broken", "no_such_module_for_compressor:load", group),
        EntryPoint("tiny", f"{__name__}:_tiny", group),
        EntryPoint("tinyprefix:", f"{__name__}:_tiny", group),
        EntryPoint("digits", f"{__name__}:_tiny", group),
        EntryPoint("ignored", "elsewhere:load", "some.other.group"),
    ])
    names = list_datasets()
    assert names[:5] == ["digits", "fashion-mnist", "cifar10", "cifar100", "imagefolder:PATH"]
    assert "tiny" in names and "tinyprefix:PATH" in names and "broken" not in names and "ignored" not in names
    assert load_dataset("tiny").info.name == "tiny"
    assert load_dataset("tinyprefix:abc").info.name == "tinyprefix:abc"
    errors = data.dataset_plugin_errors()
    assert set(errors) == {"broken", "digits"}
    assert "no_such_module_for_compressor" in errors["broken"]
    assert "already taken" in errors["digits"]
    assert load_dataset("digits").info.name == "digits", "a plugin cannot take a built-in's name"
    with pytest.raises(CompressorError, match="unknown dataset 'broken' \\(its plugin failed to load: "
                                              "ModuleNotFoundError"):
        load_dataset("broken")


def test_dataset_slug_is_file_name_safe() -> None:
    assert data.dataset_slug("digits") == "digits"
    slug = data.dataset_slug("imagefolder:/data/my pets")
    assert slug.startswith("imagefolder-my_pets-") and len(slug) == len("imagefolder-my_pets-") + 8
    assert data.dataset_slug("imagefolder:/a/pets") != data.dataset_slug("imagefolder:/b/pets")
    assert "/" not in data.dataset_slug("hub:org/name") and "/" not in data.dataset_slug("odd/name")


def test_iterating_a_folder_split_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    _image_folder(tmp_path, ["cat", "dog"], per_class=6)
    ds = load_dataset(f"imagefolder:{tmp_path}")
    torch.manual_seed(1234)
    torch.rand(3)
    seed, state = torch.initial_seed(), torch.get_rng_state()
    first = list(ds.train.batches(16, 3, shuffle=True, augment=True, seed=5))
    assert torch.initial_seed() == seed and torch.equal(torch.get_rng_state(), state)
    second = []
    for batch in ds.train.batches(16, 3, shuffle=True, augment=True, seed=5):
        torch.rand(7)  # the caller drawing between batches changes nothing
        second.append(batch)
    assert len(first) == len(second) >= 2
    for (x1, y1), (x2, y2) in zip(first, second):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    other = torch.cat([x for x, _ in ds.train.batches(16, 3, shuffle=True, augment=True, seed=6)])
    assert not torch.equal(other, torch.cat([x for x, _ in first]))
    plain = list(ds.test.batches(16, 4))
    assert all(x.shape[1:] == (3, 16, 16) for x, _ in plain)
