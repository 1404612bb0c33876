"""PPG-DaLiA heart-rate regression (Reiss et al. 2019) from the UCI archive's ``PPG_FieldStudy`` layout.

Files: ``<data_dir>/ppg_dalia/PPG_FieldStudy/S{i}/S{i}.pkl`` (latin-1 pickles, 15 subjects). Preparation, as
in the
paper's code (Log-NCDE / LinOSS ``process_ppg.py``), except that the split is seeded:

* the 6 wrist channels ACC x/y/z (32 Hz), BVP (64 Hz), EDA (4 Hz), TEMP (4 Hz) are brought to a common 64 Hz
  by sample repetition, and each modality is min-max scaled to [-1, 1] per subject (ACC jointly over its
  axes);
* the heart-rate labels (one per 2 s, each over an 8 s window) get three copies of the first label prepended,
  so label ``k`` belongs to the 2 s block ``k`` (128 steps at 64 Hz) and covers the 8 s that end with it;
  ``scale_targets=True`` (default, the paper's choice) min-max scales them to [-1, 1] per subject, ``False``
  keeps beats per minute;
* each subject's recording is cut into three contiguous parts of 70 / 15 / 15 % (train / val / test) whose
  order in time is drawn per subject from the seed (the paper draws it unseeded with ``random.randint``), and
  each part is cut into windows of 49,920 steps with stride 4,992 (390 and 39 labels): windows never straddle
  two splits.

Unpickling runs code, so a pickle is opened only when its sha256 matches a known checksum (``PICKLE_SHA256``
or the ``SHA256SUMS`` manifest that ``rhel data fetch ppg_dalia`` writes from the archive it downloaded), or
when the caller opts in with ``trust_local_pickles=True``; even then a restricted unpickler accepts only
numpy arrays.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from rhel.data.core import DEFAULT_FRACTIONS, DataError, Dataset, DatasetInfo, DatasetSpec, Split, make_rng, make_split
from rhel.data.download import Remote, download, extract_zip, file_digest

UCI_URL = "https://archive.ics.uci.edu/static/public/495/ppg+dalia.zip"
RATE = 64
#: repetition factors bringing each wrist modality to 64 Hz.
UPSAMPLE = {"ACC": 2, "BVP": 1, "EDA": 16, "TEMP": 16}
WINDOW, STRIDE, LABEL_EVERY = 49920, 4992, 128
#: sha256 of the official S{i}.pkl files, where known. The UCI archive publishes none, so this is empty and
#: ``rhel data fetch ppg_dalia`` records the checksums of the pickles it extracts into ``SHA256SUMS``.
PICKLE_SHA256: dict[str, str] = {}
MANIFEST = "SHA256SUMS"

INFO = DatasetInfo(
    name="ppg_dalia",
    task="regression",
    num_classes=None,
    output_dim=1,
    length=WINDOW,
    channels=6,
    sampling_rate=float(RATE),
    description=(
        "PPG-DaLiA heart-rate regression: 15 subjects' wrist ACC x/y/z, BVP, EDA, TEMP at 64 Hz scaled to "
        "[-1, 1]; "
        "windows of 49,920 steps (13 min), stride 4,992; one heart-rate target per 128 steps (390 per "
        "window). "
        "Per-subject contiguous 70/15/15 split, order drawn from the seed. Baseline: predicting the training "
        "mean gives the target variance as MSE."
    ),
    obtain=(
        f"`rhel data fetch ppg_dalia` downloads {UCI_URL} (a few GB) into <data_dir>/ppg_dalia/ and "
        f"records the "
        "pickles' checksums; a copy you unpacked yourself (PPG_FieldStudy/S1/S1.pkl ...) needs "
        "trust_local_pickles=True."
    ),
    target_stride=LABEL_EVERY,
)

_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def _subject_files(root: Path) -> list[Path]:
    base = root / "PPG_FieldStudy" if (root / "PPG_FieldStudy").is_dir() else root
    files = [p for p in base.glob("S*/S*.pkl") if re.fullmatch(r"S(\d+)\.pkl", p.name) and p.parent.name == p.stem]
    return sorted(files, key=lambda p: int(p.stem[1:]))


def _manifest(base: Path) -> dict[str, str]:
    path = base / MANIFEST
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if name:
            out[name] = digest
    return out


def read_subject(path: Path, trusted: dict[str, str], trust_local: bool) -> dict[str, Any]:
    """Unpickle one ``S{i}.pkl`` after its checksum check (or with explicit trust), numpy arrays only."""
    key = f"{path.parent.name}/{path.name}"
    expected = PICKLE_SHA256.get(key) or trusted.get(key)
    if expected is not None:
        got = file_digest(path)
        if got != expected:
            raise DataError(f"{path}: sha256 {got} does not match the recorded {expected}; refusing to unpickle it")
    elif not trust_local:
        raise DataError(
            f"{path}: no known checksum for this pickle, and unpickling can run code. Fetch the archive with "
            "`rhel data fetch ppg_dalia` (which records checksums), or pass trust_local_pickles=True if you "
            "trust "
            "this copy."
        )
    try:
        with open(path, "rb") as f:
            data = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise DataError(f"{path}: unreadable or truncated pickle ({e})") from None
    if not isinstance(data, dict) or "signal" not in data or "label" not in data:
        raise DataError(f"{path}: expected a dict with 'signal' and 'label'")
    return data


def _scale(x: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(x)), float(np.max(x))
    return np.zeros_like(x) if hi == lo else 2.0 * (x - lo) / (hi - lo) - 1.0


def subject_arrays(data: dict[str, Any], source: str, scale_targets: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 6)`` inputs at 64 Hz in [-1, 1] and ``(T // 128,)`` labels of one subject (see module doc)."""
    try:
        wrist = data["signal"]["wrist"]
        parts = []
        for key, rep in UPSAMPLE.items():
            arr = np.asarray(wrist[key], dtype=np.float64)
            arr = arr.reshape(arr.shape[0], -1)
            parts.append(_scale(np.repeat(arr, rep, axis=0)))
    except (KeyError, TypeError) as e:
        raise DataError(f"{source}: missing wrist signal {e}") from None
    if parts[0].shape[1] != 3 or any(p.shape[1] != 1 for p in parts[1:]):
        raise DataError(f"{source}: wrist channels {[p.shape[1] for p in parts]}, expected ACC 3, BVP/EDA/TEMP 1")
    length = min(p.shape[0] for p in parts)
    if max(p.shape[0] for p in parts) - length > RATE * 4:
        raise DataError(f"{source}: modality lengths at 64 Hz differ by more than 4 s: {[p.shape[0] for p in parts]}")
    x = np.concatenate([p[:length] for p in parts], axis=1)
    labels = np.asarray(data["label"], dtype=np.float64).reshape(-1)
    if labels.size == 0:
        raise DataError(f"{source}: no labels")
    labels = np.concatenate([np.repeat(labels[:1], 3), labels])
    if scale_targets:
        labels = _scale(labels)
    return x, labels


def _windows(x: np.ndarray, y: np.ndarray, window: int, stride: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, x.shape[0] - window + 1, stride)
    xs = np.stack([x[s : s + window] for s in starts]) if starts.size else np.zeros((0, window, x.shape[1]))
    ys = (
        np.stack([y[s // every : (s + window) // every] for s in starts])
        if starts.size
        else np.zeros((0, window // every))
    )
    return xs, ys[..., None]


def load_ppg(
    root: Path,
    seed: int = 0,
    *,
    trust_local_pickles: bool = False,
    scale_targets: bool = True,
    window: int = WINDOW,
    stride: int = STRIDE,
    label_every: int = LABEL_EVERY,
) -> Dataset:
    """Load PPG-DaLiA windows with the seeded per-subject contiguous split (see module doc)."""
    if window % label_every or stride % label_every:
        raise ValueError(f"window ({window}) and stride ({stride}) must be multiples of label_every ({label_every})")
    files = _subject_files(root)
    if not files:
        raise DataError(f"{root}: no PPG_FieldStudy/S{{i}}/S{{i}}.pkl files")
    trusted = _manifest(files[0].parent.parent)
    rng = make_rng(seed)
    bounds = np.cumsum((0.0,) + DEFAULT_FRACTIONS)
    pieces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": [], "test": []}
    for path in files:
        x, labels = subject_arrays(read_subject(path, trusted, trust_local_pickles), str(path), scale_targets)
        n_blocks = min(x.shape[0] // label_every, labels.size)
        x, labels = x[: n_blocks * label_every], labels[:n_blocks]
        sizes = np.diff(np.floor(bounds * n_blocks).astype(int))
        order = rng.permutation(3)  # the order in time of the train / val / test parts of this subject
        start = 0
        for part in order:
            name = ("train", "val", "test")[part]
            b0, b1 = start, start + sizes[part]
            start = b1
            pieces[name].append(
                _windows(x[b0 * label_every : b1 * label_every], labels[b0:b1], window, stride, label_every)
            )
    splits: list[Split] = []
    for name in ("train", "val", "test"):
        xs = np.concatenate([p[0] for p in pieces[name]])
        ys = np.concatenate([p[1] for p in pieces[name]])
        splits.append(make_split(xs, ys, None, "regression", f"{root} ({name})"))
    info = INFO
    if (window, label_every) != (WINDOW, LABEL_EVERY):
        from dataclasses import replace

        info = replace(info, length=window, target_stride=label_every)
    return Dataset(info, *splits)


def fetch_ppg(folder: Path, progress: bool = True) -> Path:
    """Download the UCI archive, unpack ``PPG_FieldStudy`` (nested zips too) and record the pickles'
    sha256."""
    archive = download(Remote("ppg+dalia.zip", (UCI_URL,)), folder, progress=progress)
    extract_zip(archive, folder)
    for inner in list(folder.rglob("*.zip")):
        if inner != archive and not (folder / "PPG_FieldStudy").is_dir():
            extract_zip(inner, folder)
    files = _subject_files(folder)
    if not files:
        raise DataError(f"{archive}: no PPG_FieldStudy/S{{i}}/S{{i}}.pkl inside")
    base = files[0].parent.parent
    lines = [f"{file_digest(p)}  {p.parent.name}/{p.name}\n" for p in files]
    (base / MANIFEST).write_text("".join(lines))
    return folder


def specs() -> list[DatasetSpec]:
    return [DatasetSpec(INFO, load_ppg, folders=("ppg_dalia", "ppg-dalia", "PPG_FieldStudy"), fetch=fetch_ppg)]
