"""Epilepsy EEG segments: Bonn (Andrzejak et al. 2001) and New Delhi (Swami et al. 2016), read from their
zips.

Neither has an official split: the pool is split 70/15/15 by seed, stratified by class. Values are the raw
recorded amplitudes (use :meth:`Dataset.standardized` for per-channel standardisation).

* Bonn: ``<data_dir>/bonn-eeg/Bonn EEG dataset.zip`` with folders ``A_Z, B_O, C_N, D_F, E_S`` of 100 text
  files of 4,097 samples (173.61 Hz). Classes A..E (``binary=True``: seizure E vs the rest).
* Delhi: ``<data_dir>/delhi-eeg/Delhi dataset.zip`` with folders ``ictal, interictal, preictal`` of 50 MAT
  files (1,024 samples, 200 Hz); classes in that (sorted) order.
"""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from rhel.data.core import DataError, Dataset, DatasetInfo, DatasetSpec, apply_frames, build_splits, check_frame
from rhel.data.download import Remote, download, verify_folder

MIRROR = "https://github.com/RYH2077/EEG-Epilepsy-Datasets/raw/185859ab48bc701c9a10f6bb2b5f76d8e28e4003/"
BONN_ZIP = Remote(
    "Bonn EEG dataset.zip",
    (MIRROR + "Bonn%20EEG%20dataset.zip",),
    ("sha256:f4c2dc52fd5320d4404fcbc6ecb9db69a4a7e408df4e3d5456530343dbcb75ad",),
)
DELHI_ZIP = Remote(
    "Delhi dataset.zip",
    (MIRROR + "Delhi%20dataset.zip",),
    ("sha256:7e43b3b9081c5fdc200299a6a41c229b67b1bdfa00c7fb70fc5a5a259e48a310",),
)
BONN_SETS = ("A_Z", "B_O", "C_N", "D_F", "E_S")
BONN_CLASSES = ("A", "B", "C", "D", "E")
DELHI_CLASSES = ("ictal", "interictal", "preictal")

BONN_INFO = DatasetInfo(
    name="bonn_eeg",
    task="classification",
    num_classes=5,
    output_dim=None,
    length=4097,
    channels=1,
    sampling_rate=173.61,
    description=(
        "Bonn epilepsy EEG: 500 single-channel segments of 4,097 samples (23.6 s), sets A (healthy, eyes "
        "open), "
        "B (eyes closed), C, D (interictal), E (seizure), 100 each; 70/15/15 split by seed, stratified. "
        "Chance = 1/5 (binary=True: E vs rest, majority 0.8)."
    ),
    obtain=(f"`rhel data fetch bonn_eeg` downloads {BONN_ZIP.urls[0]} into <data_dir>/bonn-eeg/ (sha256 checked)."),
)
DELHI_INFO = DatasetInfo(
    name="delhi_eeg",
    task="classification",
    num_classes=3,
    output_dim=None,
    length=1024,
    channels=1,
    sampling_rate=200.0,
    description=(
        "New Delhi epilepsy EEG: 150 segments of 1,024 samples (5.12 s), ictal / interictal / preictal, 50 "
        "each; "
        "70/15/15 split by seed, stratified. Chance = 1/3."
    ),
    obtain=(f"`rhel data fetch delhi_eeg` downloads {DELHI_ZIP.urls[0]} into <data_dir>/delhi-eeg/ (sha256 checked)."),
)


def _open_zip(path: Path, remote: Remote, name: str) -> zipfile.ZipFile:
    if not path.is_file():
        raise DataError(f"{path}: missing")
    verify_folder(path.parent, {path: remote.checksums}, what=name)
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise DataError(f"{path}: not a valid zip ({e})") from None


def _read_member(zf: zipfile.ZipFile, name: str, source: Path) -> bytes:
    try:
        return zf.read(name)
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
        raise DataError(f"{source}: member {name!r} is corrupt ({e}); fetch the zip again") from None


def load_bonn(root: Path, seed: int = 0, *, binary: bool = False, frame: int | None = None) -> Dataset:
    """Load Bonn EEG from ``root/Bonn EEG dataset.zip`` as ``(500, 4097, 1)`` (``frame=K``: ``(500, ceil(4097 / K),
    K)``, K consecutive samples per step)."""
    check_frame(frame)
    path = root / BONN_ZIP.filename
    series, labels = [], []
    with _open_zip(path, BONN_ZIP, BONN_INFO.name) as zf:
        for name in sorted(zf.namelist()):
            top = name.split("/")[0]
            if top not in BONN_SETS or not name.lower().endswith(".txt"):
                continue
            text = _read_member(zf, name, path).decode("ascii", errors="replace")
            try:
                values = np.array(text.split(), dtype=np.float64)
            except ValueError:
                bad = next(i for i, t in enumerate(text.split()) if not re.fullmatch(r"[-+]?\d+(\.\d*)?", t))
                raise DataError(f"{path}:{name}: value {bad} is not a number") from None
            if values.size != BONN_INFO.length:
                raise DataError(f"{path}:{name}: {values.size} samples, expected {BONN_INFO.length}")
            series.append(values)
            labels.append(BONN_SETS.index(top))
    if not series:
        raise DataError(f"{path}: no A_Z/ .. E_S/ text files")
    x = np.stack(series)[:, :, None]
    y = np.asarray(labels)
    info, classes = BONN_INFO, BONN_CLASSES
    if binary:
        y = (y == 4).astype(np.int64)
        classes = ("non-seizure", "seizure")
        info = dataclasses.replace(info, name="bonn_eeg", num_classes=2)
    info, x, _ = apply_frames(info, x, None, frame)
    return build_splits(info, x, y, seed=seed, classes=classes, source=str(path))


def load_delhi(root: Path, seed: int = 0, *, frame: int | None = None) -> Dataset:
    """Load New Delhi EEG from ``root/Delhi dataset.zip`` as ``(150, 1024, 1)`` (``frame=K``: K consecutive samples
    per step)."""
    check_frame(frame)
    path = root / DELHI_ZIP.filename
    series, labels = [], []
    with _open_zip(path, DELHI_ZIP, DELHI_INFO.name) as zf:
        for name in sorted(zf.namelist()):
            parts = name.split("/")
            if len(parts) < 2 or parts[-2] not in DELHI_CLASSES or not name.endswith(".mat"):
                continue
            cls = parts[-2]
            try:
                mat = loadmat(io.BytesIO(_read_member(zf, name, path)))
            except (ValueError, TypeError, OSError) as e:
                raise DataError(f"{path}:{name}: unreadable MAT file ({e})") from None
            if cls not in mat:
                raise DataError(
                    f"{path}:{name}: no variable {cls!r} (found {[k for k in mat if not k.startswith('__')]})"
                )
            values = np.asarray(mat[cls], dtype=np.float64).reshape(-1)
            if values.size != DELHI_INFO.length:
                raise DataError(f"{path}:{name}: {values.size} samples, expected {DELHI_INFO.length}")
            series.append(values)
            labels.append(DELHI_CLASSES.index(cls))
    if not series:
        raise DataError(f"{path}: no ictal/ interictal/ preictal/ MAT files")
    info, x, _ = apply_frames(DELHI_INFO, np.stack(series)[:, :, None], None, frame)
    return build_splits(
        info,
        x,
        np.asarray(labels),
        seed=seed,
        classes=DELHI_CLASSES,
        source=str(path),
    )


def _fetcher(remote: Remote):
    def fetch(folder: Path, progress: bool = True) -> Path:
        download(remote, folder, progress=progress)
        return folder

    return fetch


def specs() -> list[DatasetSpec]:
    return [
        DatasetSpec(BONN_INFO, load_bonn, folders=("bonn-eeg",), fetch=_fetcher(BONN_ZIP)),
        DatasetSpec(DELHI_INFO, load_delhi, folders=("delhi-eeg",), fetch=_fetcher(DELHI_ZIP)),
    ]
