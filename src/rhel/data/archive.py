"""Loading and fetching UCR/UEA archive problems (shared by :mod:`rhel.data.uea`, :mod:`rhel.data.ucr` and
user
folders in those layouts).

Download sources, tried in order, for problem ``<Name>``:

1. ``https://www.timeseriesclassification.com/aeon-toolkit/<Name>.zip`` (the archive's current per-problem
zips),
2. ``https://timeseriesclassification.com/ClassificationDownloads/<Name>.zip`` (the archive's older path),
3. ``http://www.timeseriesclassification.com/Downloads/<Name>.zip`` (the oldest path, still mirrored).

The archive publishes no checksums: the sha256 of the first download is recorded next to the zip
(``<Name>.zip.sha256``) and later downloads must match it. Whole-archive zips (``Multivariate2018_arff.zip``,
``Univariate2018_ts.zip`` on the same site, or the UCR 2018 archive on Zenodo, record 11198697) can be
unpacked by hand into ``<data_dir>/<Name>/`` instead: any of the layouts :mod:`rhel.data.formats` reads will
do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rhel.data.core import (
    DEFAULT_FRACTIONS,
    DEFAULT_VAL_FRACTION,
    DataError,
    Dataset,
    DatasetInfo,
    PadMode,
    apply_frames,
    build_splits,
    check_frame,
    encode_labels,
    pad_sequences,
)
from rhel.data.download import Remote, download, extract_zip
from rhel.data.formats import read_problem

__all__ = ["archive_urls", "fetch_archive_problem", "load_archive_folder"]


def archive_urls(name: str) -> tuple[str, ...]:
    """Mirror URLs of one UCR/UEA problem zip."""
    return (
        f"https://www.timeseriesclassification.com/aeon-toolkit/{name}.zip",
        f"https://timeseriesclassification.com/ClassificationDownloads/{name}.zip",
        f"http://www.timeseriesclassification.com/Downloads/{name}.zip",
    )


def fetch_archive_problem(name: str, folder: Path, *, progress: bool = True) -> Path:
    """Download and unpack ``<Name>.zip`` into ``folder`` (flattening a top-level ``<Name>/`` directory)."""
    archive = download(Remote(f"{name}.zip", archive_urls(name)), folder, progress=progress)
    extract_zip(archive, folder)
    nested = folder / name
    if nested.is_dir():
        for p in nested.iterdir():
            target = folder / p.name
            if not target.exists():
                p.rename(target)
    return folder


def load_archive_folder(
    folder: Path,
    info: DatasetInfo | None = None,
    *,
    name: str | None = None,
    seed: int = 0,
    resplit: bool = False,
    dedupe: bool = False,
    pad: PadMode = "end",
    max_length: int | None = None,
    frame: int | None = None,
    fmt: str | None = None,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    num_classes: int | None = None,
) -> Dataset:
    """Load a UCR/UEA problem folder (any layout) into a :class:`Dataset`.

    ``resplit=False`` keeps the archive's TEST split and carves ``val_fraction`` of TRAIN as validation;
    ``resplit=True`` merges TRAIN and TEST and re-splits ``fractions`` (70/15/15) by seed, as the paper does.
    ``dedupe=True`` drops repeated series (same values and length) after merging, keeping the first (the
    paper's preprocessing does this). Variable-length problems are padded (``pad="end"``, the default, with a
    mask) or resampled (``pad="resample"``) to the longest series or to ``max_length``. ``frame=K`` then hands
    the model ``K`` consecutive steps per step (``K`` times the channels, a ``K``-times shorter sequence, every
    sample kept; resampling to fewer steps instead drops what lies above the new Nyquist frequency, or
    aliases it). ``num_classes``, when
    given, is the number of classes the files must hold (a label outside them is an error).
    """
    check_frame(frame)
    detected, raw = read_problem(folder, name, fmt)
    series = raw["TRAIN"].series + raw["TEST"].series
    labels = np.concatenate([raw["TRAIN"].labels, raw["TEST"].labels])
    is_test = np.arange(len(series)) >= len(raw["TRAIN"].series)
    y, classes = encode_labels(labels)
    if num_classes is not None and len(classes) != num_classes:
        raise DataError(
            f"{folder}: {len(classes)} class labels {list(classes)} found, num_classes={num_classes} expected"
        )
    x, mask = pad_sequences(series, max_length, pad, source=str(folder))
    if dedupe:
        flat = x.reshape(x.shape[0], -1)
        keyed = np.concatenate([flat, mask.astype(np.float32) if mask is not None else flat[:, :0]], axis=1)
        _, first = np.unique(keyed, axis=0, return_index=True)
        keep = np.sort(first)
        x, y, is_test = x[keep], y[keep], is_test[keep]
        mask = mask[keep] if mask is not None else None
    if info is None:
        info = DatasetInfo(
            name=detected,
            task="classification",
            num_classes=len(classes),
            output_dim=None,
            length=int(x.shape[1]),
            channels=int(x.shape[2]),
            sampling_rate=None,
            description=f"archive problem {detected} read from {folder}",
            obtain=f"your own files in {folder}",
        )
    elif info.num_classes != len(classes):
        from dataclasses import replace

        info = replace(info, num_classes=len(classes))
    info, x, mask = apply_frames(info, x, mask, frame)
    return build_splits(
        info,
        x,
        y,
        mask,
        seed=seed,
        test_index=None if resplit else is_test,
        fractions=fractions,
        val_fraction=val_fraction,
        classes=classes,
        source=str(folder),
    )
