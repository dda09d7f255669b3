"""Datasets: a registry of named loaders (built-ins + `compressor.datasets` entry points) and the splits they return.

`load_dataset("digits")` gives a `Dataset` with train, calib and test splits; every split answers
`batches(input_size, batch_size, *, shuffle, augment, seed)` and `len()`, the one batch interface strategies see.
Add a dataset with `@register_dataset("name")` on a loader `(DatasetRequest) -> Dataset`, or declare the loader under
the `compressor.datasets` entry point of your own package.
"""

from compressor.data.builtin import DEBIAN_FASHION_MNIST  # importing builtin registers the built-in datasets
from compressor.data.registry import (
    ENTRY_POINT_GROUP,
    DatasetEntry,
    DatasetLoader,
    DatasetRequest,
    dataset_entries,
    dataset_plugin_errors,
    dataset_slug,
    default_cache_dir,
    list_datasets,
    load_dataset,
    register_dataset,
)
from compressor.data.splits import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Dataset,
    DatasetInfo,
    FolderSplit,
    Split,
    TensorSplit,
    normalization,
    with_calib,
)

__all__ = [
    "DEBIAN_FASHION_MNIST", "ENTRY_POINT_GROUP", "IMAGENET_MEAN", "IMAGENET_STD", "Dataset", "DatasetEntry",
    "DatasetInfo", "DatasetLoader", "DatasetRequest", "FolderSplit", "Split", "TensorSplit", "dataset_entries",
    "dataset_plugin_errors", "dataset_slug", "default_cache_dir", "list_datasets", "load_dataset",
    "normalization", "register_dataset", "with_calib",
]
