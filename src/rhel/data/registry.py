"""The dataset registry: ``load``, ``list_datasets``, ``dataset_info``, ``fetch``.

Folder rule: a named dataset lives in its own folder under the data directory (``<data_dir>/<folder>``, see
:attr:`DatasetSpec.folders`; the first existing candidate wins, and a download goes to the first candidate).
With a shared data directory that finds ``fsdd/recordings/*.wav``, ``mnist/*.gz``,
``bonn-eeg/Bonn EEG dataset.zip``, ``delhi-eeg/Delhi dataset.zip``, ``ucr-long/<Name>/``, ``<UEAName>/``.

Anything that is not a registered name is treated as a path to a user's own data (a folder in the UCR or UEA
layout, or an ``.npz`` file / a folder holding one), see :func:`load_path`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from rhel.data.core import DataError, Dataset, DatasetInfo, DatasetSpec, build_splits, make_split
from rhel.data.download import resolve_data_dir

__all__ = ["DatasetSpec", "load", "list_datasets", "dataset_info", "fetch", "dataset_folder", "load_path"]


_REGISTRY: dict[str, DatasetSpec] = {}


def _registry() -> dict[str, DatasetSpec]:
    if not _REGISTRY:
        # the loaders are imported when a dataset is first named: `rhel data list` reads no loader it does not need
        from rhel.data import eeg, fsdd, mnist, ppg, synthetic, ucr, uea

        for module in (synthetic, fsdd, mnist, uea, ucr, eeg, ppg):
            for spec in module.specs():
                _REGISTRY[spec.info.name] = spec
    return _REGISTRY


def _spec(name: str) -> DatasetSpec:
    reg = _registry()
    if name in reg:
        return reg[name]
    lowered = {k.lower(): k for k in reg}
    if name.lower() in lowered:
        return reg[lowered[name.lower()]]
    raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(reg))} (or give a path to your own data)")


def list_datasets() -> list[str]:
    """Names of the registered datasets, in registration order (synthetic tasks first)."""
    return list(_registry())


def dataset_info(name: str) -> DatasetInfo:
    """Static metadata of a registered dataset (nothing is read or downloaded)."""
    return _spec(name).info


def dataset_folder(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder a dataset is read from: the first existing candidate, else where a download would go.

    ``None`` for datasets generated in-process.
    """
    spec = _spec(name)
    if not spec.folders:
        return None
    root = resolve_data_dir(data_dir)
    candidates = [root / f for f in spec.folders] + [Path(p) for p in spec.extra_paths]
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def fetch(name: str, data_dir: str | os.PathLike[str] | None = None, *, progress: bool = True) -> Path | None:
    """Download a dataset into its folder (no-op when present or generated); returns the folder."""
    spec = _spec(name)
    folder = dataset_folder(name, data_dir)
    if folder is None:
        return None
    if spec.fetch is None:
        raise DataError(f"{spec.info.name} has no downloader: {spec.info.obtain}")
    return spec.fetch(folder, progress=progress)


def load(
    name: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    download: bool = True,
    **options: Any,
) -> Dataset:
    """Load a dataset by name (or a path to your own data) with a seeded train / validation / test split.

    Missing named datasets are downloaded first when ``download`` is true (an offline machine gets a
    :class:`~rhel.data.DownloadError` saying which file to fetch and where to put it).
    """
    key = os.fspath(name)
    try:
        spec = _spec(key)
    except KeyError:
        if Path(key).expanduser().exists():
            return load_path(Path(key).expanduser(), seed=seed, **options)
        raise
    folder = dataset_folder(spec.info.name, data_dir)
    if folder is not None and not folder.exists():
        if not download or spec.fetch is None:
            raise DataError(f"{spec.info.name}: not found at {folder}. {spec.info.obtain}")
        spec.fetch(folder)
    return spec.load(folder, seed=seed, **{**spec.defaults, **options})


def _load_npz(path: Path, seed: int, val_fraction: float, task: str | None) -> Dataset:
    """``.npz`` with ``x_train, y_train, x_test, y_test`` (+ optional ``x_val, y_val`` and
    ``mask_<split>``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read .npz ({e})") from None
    for key in ("x_train", "y_train", "x_test", "y_test"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r} (found {sorted(arrays)})")
    for key in [k for k in arrays if k.startswith("x_")]:
        if arrays[key].ndim == 2:
            arrays[key] = arrays[key][:, :, None]
    y = arrays["y_train"]
    if task is None:
        task = "classification" if y.ndim == 1 and np.issubdtype(y.dtype, np.integer) else "regression"
    if task == "regression":
        for key in [k for k in arrays if k.startswith("y_")]:
            t = arrays[key]
            arrays[key] = t.reshape(t.shape[0], 1, 1) if t.ndim == 1 else t[:, None, :] if t.ndim == 2 else t
    xt = arrays["x_train"]
    n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1 if task == "classification" else None
    info = DatasetInfo(
        name=path.stem,
        task=task,  # type: ignore[arg-type]
        num_classes=n_classes,
        output_dim=None if task == "classification" else int(arrays["y_train"].shape[-1]),
        length=int(xt.shape[1]),
        channels=int(xt.shape[2]),
        sampling_rate=None,
        description=f"user arrays from {path}",
        obtain=f"your own file {path}",
    )
    if "x_val" in arrays:
        parts = {
            s: make_split(arrays[f"x_{s}"], arrays[f"y_{s}"], arrays.get(f"mask_{s}"), info.task, f"{path} ({s})")
            for s in ("train", "val", "test")
        }
        return Dataset(info, parts["train"], parts["val"], parts["test"])
    x = np.concatenate([arrays["x_train"], arrays["x_test"]])
    t = np.concatenate([arrays["y_train"], arrays["y_test"]])
    masks = [arrays.get("mask_train"), arrays.get("mask_test")]
    mask = None
    if any(m is not None for m in masks):
        mask = np.concatenate(
            [
                m if m is not None else np.ones(a.shape[:2], bool)
                for m, a in zip(masks, (xt, arrays["x_test"]), strict=True)
            ]
        )
    is_test = np.arange(x.shape[0]) >= xt.shape[0]
    return build_splits(info, x, t, mask, seed=seed, test_index=is_test, val_fraction=val_fraction, source=str(path))


def load_path(path: Path, seed: int = 0, format: str | None = None, **options: Any) -> Dataset:  # noqa: A002
    """Load a user's own data by path; ``format`` is detected or declared.

    * ``format="npz"``: an ``.npz`` file (or a folder holding exactly one) with arrays ``x_train`` ``(N, L[,
      C])``, ``y_train``, ``x_test``, ``y_test``, optionally ``x_val``/``y_val`` and boolean ``mask_<split>``
      ``(N, L)``. Integer 1-D targets mean classification; float targets regression (``(N,)``, ``(N, D)`` or
      ``(N, T, D)``).
    * ``format`` in ``"ucr"`` / ``"tsv"`` / ``"txt"`` / ``"ts"`` / ``"arff"`` / ``"arff-dims"`` / ``"uea"``:
      an archive folder (``<Name>_TRAIN``/``_TEST`` files, or ``<Name>Dimension<d>_TRAIN.arff`` per
      dimension), loaded by :func:`rhel.data.archive.load_archive_folder` (options: ``resplit``, ``dedupe``,
      ``pad``, ``max_length``...).
    """
    from rhel.data.archive import load_archive_folder

    val_fraction = options.pop("val_fraction", 0.15)
    npz = [path] if path.is_file() else sorted(path.glob("*.npz"))
    if format == "npz" or (format is None and path.suffix == ".npz") or (format is None and len(npz) == 1):
        if len(npz) != 1:
            raise DataError(f"{path}: expected one .npz file, found {len(npz)}")
        return _load_npz(npz[0], seed, val_fraction, options.pop("task", None))
    if path.is_file():
        raise DataError(f"{path}: a file that is not .npz; give the folder of an archive problem instead")
    fmt = {"ucr": None, "uea": None, None: None}.get(format, format)
    ds = load_archive_folder(path, seed=seed, fmt=fmt, val_fraction=val_fraction, **options)
    return dataclasses.replace(ds)
