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
import inspect
import os
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rhel.data.core import (
    DataError,
    Dataset,
    DatasetInfo,
    DatasetSpec,
    UnknownDatasetError,
    build_splits,
    check_class_indices,
    check_classes,
    check_regression_targets,
    make_split,
)
from rhel.data.download import has_data_files, resolve_data_dir, verify_folder

__all__ = [
    "DatasetSpec",
    "load",
    "list_datasets",
    "dataset_info",
    "fetch",
    "dataset_folder",
    "load_path",
    "resolve",
    "is_present",
]


_REGISTRY: dict[str, DatasetSpec] = {}


def _registry() -> dict[str, DatasetSpec]:
    if not _REGISTRY:
        # the loaders are imported when a dataset is first named: `rhel data list` reads no loader it does not need
        from rhel.data import eeg, fsdd, mnist, ppg, synthetic, ucr, uea

        for module in (synthetic, fsdd, mnist, uea, ucr, eeg, ppg):
            for spec in module.specs():
                _REGISTRY[spec.info.name] = spec
    return _REGISTRY


def _key(name: str) -> str:
    """Names match whatever their case and ``-``/``_`` spelling: ``bonn-eeg``, ``Bonn_EEG``, ``bonn_eeg``."""
    return name.lower().replace("-", "_")


def _spec(name: str) -> DatasetSpec:
    reg = _registry()
    if name in reg:
        return reg[name]
    normalised = {_key(k): k for k in reg}
    if _key(name) in normalised:
        return reg[normalised[_key(name)]]
    raise UnknownDatasetError(
        f"unknown dataset {name!r}; known: {', '.join(sorted(reg))} (or give a path to your own data)"
    )


def _looks_like_class_labels(y: np.ndarray) -> bool:
    """Float targets of one value per sequence, few distinct values, at least half of them whole numbers: perhaps class
    labels saved as floats, which must not be regressed without a word."""
    values = np.unique(y[np.isfinite(y)])
    return 1 < values.size <= 50 and np.mean(np.isin(y, values[values == np.round(values)])) >= 0.5


def _looks_like_path(name: str) -> bool:
    return os.sep in name or "/" in name or name.startswith((".", "~")) or Path(name).suffix in _DATA_SUFFIXES


_DATA_SUFFIXES = (".npz", ".ts", ".arff", ".tsv", ".txt")


def resolve(
    name: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None
) -> tuple[str | None, Path | None]:
    """What ``name`` refers to: ``(registered name, folder)``, ``(registered name, None)`` for a generated dataset,
    or ``(None, path)`` for a user's own data.

    A path whose last components are a registered dataset's folder (``.../shared/data/bonn-eeg``,
    ``.../ucr-long/Rock``) is that dataset, read from there. A path that does not exist is a :class:`DataError`
    saying so; a name that is neither is an :class:`~rhel.data.UnknownDatasetError`.
    """
    key = os.fspath(name)
    try:
        spec = _spec(key)
    except UnknownDatasetError:
        path = Path(key).expanduser()
        if not path.exists():
            if _looks_like_path(key):
                raise DataError(
                    f"{path}: no such file or folder (give an existing path or a registered dataset name)"
                ) from None
            raise
        for spec in _registry().values():
            for folder in spec.folders:
                parts = Path(folder).parts
                if path.is_dir() and path.resolve().parts[-len(parts) :] == parts:
                    return spec.info.name, path
        return None, path
    return spec.info.name, dataset_folder(spec.info.name, data_dir)


def is_present(folder: Path) -> bool:
    """Whether ``folder`` holds data files (an empty folder left by a failed download does not count); checksums
    are checked by :func:`load` and :func:`fetch`, which raise on a mismatch."""
    return has_data_files(folder)


def list_datasets() -> list[str]:
    """Names of the registered datasets, in registration order (synthetic tasks first)."""
    return list(_registry())


def dataset_info(name: str) -> DatasetInfo:
    """Static metadata of a registered dataset (nothing is read or downloaded)."""
    return _spec(name).info


def dataset_folder(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder a dataset is read from: the first candidate holding data files, else where a download would go.

    ``None`` for datasets generated in-process.
    """
    spec = _spec(name)
    if not spec.folders:
        return None
    root = resolve_data_dir(data_dir)
    candidates = [root / f for f in spec.folders] + [Path(p) for p in spec.extra_paths]
    for c in candidates:
        if is_present(c):
            return c
    return candidates[0]


def fetch(
    name: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None, *, progress: bool = True
) -> Path | None:
    """Download a dataset into its folder and return the folder (``None`` for generated datasets).

    ``name`` may be a path to a dataset folder. Data that is present and verifies is not downloaded again (this
    works offline); present data that does not verify raises :class:`DataError` naming the file.
    """
    registered, folder = resolve(name, data_dir)
    if folder is None:
        return None
    if registered is None:
        verify_folder(folder if folder.is_dir() else folder.parent)
        return folder
    spec = _spec(registered)
    if is_present(folder):
        verify_folder(folder, what=registered)
        return folder
    if spec.fetch is None:
        raise DataError(f"{spec.info.name} has no downloader: {spec.info.obtain}")
    spec.fetch(folder, progress=progress)
    verify_folder(folder, what=registered)
    return folder


def _check_options(
    fn: Callable[..., Any], options: dict[str, Any], what: str, extra: Callable[..., Any] | None
) -> None:
    """Refuse ``options`` that ``fn`` does not take (with ``**options``, those of ``extra``, where it forwards
    them), naming the key and listing the valid ones."""
    valid: set[str] = set()
    for f in (fn, extra):
        if f is None:
            continue
        params = inspect.signature(f).parameters.values()
        valid |= {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    valid -= {"root", "seed", "folder", "info", "name", "path"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise DataError(
            f"unknown option(s) {unknown} for {what} ([data.options] in a config); valid: "
            f"{', '.join(sorted(valid)) or 'none (this dataset takes no options)'}"
        )


def load(
    name: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    *,
    download: bool = True,
    **options: Any,
) -> Dataset:
    """Load a dataset by name (or a path to a dataset folder or your own data) with a seeded train / validation /
    test split.

    Names match in any case and with ``-`` or ``_`` (``bonn-eeg`` is ``bonn_eeg``). Files with known checksums
    are verified (cached by size and mtime). Missing named datasets are downloaded first when ``download`` is
    true (an offline machine gets a :class:`~rhel.data.DownloadError` saying which file to fetch and where to put
    it). Unknown ``options`` raise :class:`~rhel.data.DataError`.
    """
    from rhel.data.archive import load_archive_folder

    registered, folder = resolve(name, data_dir)
    if registered is None:
        assert folder is not None
        return load_path(folder, seed=seed, **options)
    spec = _spec(registered)
    _check_options(spec.load, options, f"dataset {registered}", load_archive_folder)
    if folder is not None:
        if not is_present(folder):
            if not download or spec.fetch is None:
                raise DataError(f"{spec.info.name}: no data files in {folder}. {spec.info.obtain}")
            spec.fetch(folder)
        verify_folder(folder, what=registered)
    return spec.load(folder, seed=seed, **{**spec.defaults, **options})


def _load_npz(path: Path, seed: int, val_fraction: float, task: str | None, num_classes: int | None) -> Dataset:
    """``.npz`` with ``x_train, y_train, x_test, y_test`` (+ optional ``x_val, y_val`` and
    ``mask_<split>``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated .npz ({e}); save it again with numpy.savez") from None
    for key in ("x_train", "y_train", "x_test", "y_test"):
        if key not in arrays:
            raise DataError(f"{path}: missing array {key!r} (found {sorted(arrays)})")
    for key in [k for k in arrays if k.startswith("x_")]:
        if arrays[key].ndim == 2:
            arrays[key] = arrays[key][:, :, None]
    y = arrays["y_train"]
    if task is None:
        task = "classification" if y.ndim == 1 and np.issubdtype(y.dtype, np.integer) else "regression"
        if task == "regression" and y.ndim == 1 and _looks_like_class_labels(y):
            warnings.warn(
                f"{path} (y_train): float targets that look like class labels ({len(np.unique(y))} distinct "
                "values, mostly whole numbers) are treated as regression targets; pass task='classification' "
                "([data.options] in a config) if they are classes (the labels must then be integers)",
                stacklevel=2,
            )
    if task == "regression":
        for key in [k for k in arrays if k.startswith("y_")]:
            t = arrays[key]
            arrays[key] = t.reshape(t.shape[0], 1, 1) if t.ndim == 1 else t[:, None, :] if t.ndim == 2 else t
        for key in [k for k in arrays if k.startswith("y_")]:
            if arrays[key].shape[1:] != arrays["y_train"].shape[1:]:
                raise DataError(
                    f"{path} ({key}): regression targets of shape (N, {', '.join(map(str, arrays[key].shape[1:]))}) "
                    f"do not match y_train's; predictions would broadcast against them"
                )
    xt = arrays["x_train"]
    n_classes = None
    if task == "classification":
        for key in [k for k in arrays if k.startswith("y_")]:
            arrays[key] = check_class_indices(arrays[key], f"{path} ({key})", num_classes)
        labels = [arrays[k] for k in arrays if k.startswith("y_")]
        found = np.unique(np.concatenate([y.ravel() for y in labels]))
        n_classes = num_classes if num_classes is not None else int(max(found.max(), 0)) + 1
        missing = np.setdiff1d(np.arange(n_classes), found) if found.size and found.min() >= 0 else []
        if num_classes is None and len(missing) and np.issubdtype(found.dtype, np.integer):
            raise DataError(
                f"{path}: label {int(found.max())} implies {n_classes} classes, but classes "
                f"{np.asarray(missing).tolist()[:8]} have no example; relabel to 0..K-1 or pass num_classes="
            )
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
        dataset = Dataset(info, parts["train"], parts["val"], parts["test"])
        check_classes(dataset, str(path))
        check_regression_targets(dataset, str(path))
        return dataset
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

    if not path.exists():
        raise DataError(f"{path}: no such file or folder (give an existing path or a registered dataset name)")
    verify_folder(path if path.is_dir() else path.parent)
    val_fraction = options.pop("val_fraction", 0.15)
    npz = [path] if path.is_file() else sorted(path.glob("*.npz"))
    if format == "npz" or (format is None and path.suffix == ".npz") or (format is None and len(npz) == 1):
        if len(npz) != 1:
            raise DataError(f"{path}: expected one .npz file, found {len(npz)}")
        _check_options(_load_npz, {"val_fraction": 0, **options}, f"the .npz file {npz[0]}", None)
        return _load_npz(npz[0], seed, val_fraction, options.pop("task", None), options.pop("num_classes", None))
    if path.is_file():
        raise DataError(f"{path}: a file that is not .npz; give the folder of an archive problem instead")
    fmt = {"ucr": None, "uea": None, None: None}.get(format, format)
    _check_options(load_archive_folder, {"val_fraction": 0, **options}, f"the archive folder {path}", None)
    ds = load_archive_folder(path, seed=seed, fmt=fmt, val_fraction=val_fraction, **options)
    return dataclasses.replace(ds)
