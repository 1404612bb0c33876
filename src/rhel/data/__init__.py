"""Datasets for rhel: one interface from a name (or a path) to seeded train / validation / test arrays.

>>> from rhel.data import load
>>> ds = load("long_range_pattern", seed=0)
>>> ds.train.inputs.shape, ds.info.num_classes
((1024, 512, 4), 4)

See ``docs/data.md`` for every dataset, its options, and how to obtain it.
"""

from rhel.data.core import (
    DataError,
    Dataset,
    DatasetInfo,
    DownloadError,
    Split,
    UnknownDatasetError,
    build_splits,
    make_split,
    pad_sequences,
    split_indices,
)
from rhel.data.download import default_data_dir, resolve_data_dir
from rhel.data.registry import dataset_folder, dataset_info, fetch, list_datasets, load, load_path

__all__ = [
    "DataError",
    "Dataset",
    "DatasetInfo",
    "DownloadError",
    "Split",
    "UnknownDatasetError",
    "build_splits",
    "dataset_folder",
    "dataset_info",
    "default_data_dir",
    "fetch",
    "list_datasets",
    "load",
    "load_path",
    "make_split",
    "pad_sequences",
    "resolve_data_dir",
    "split_indices",
]
