"""Free Spoken Digit Dataset: raw 8 kHz speech, 10 classes, up to 18,262 samples: the long-sequence speech
benchmark.

Files ``<data_dir>/fsdd/recordings/{digit}_{speaker}_{index}.wav`` (mono int16, 8 kHz), scaled to [-1, 1).
Official split (the dataset's README): recordings with index 0-4 are the test set (300), 5-49 the train pool
(2,700) from which ``val_fraction`` is carved by seed, stratified by digit.

Variable length (1,148 to 18,262 samples) is handled explicitly: ``pad="end"`` (default) zero-pads after the
recording up to the longest one (or ``max_length``, cropping longer ones) and returns a mask; ``pad="start"``
pads before it (every recording ends at the last step); ``pad="resample"`` stretches every recording to
``max_length`` steps (no mask). ``sample_rate`` resamples the audio first (polyphase,
:func:`scipy.signal.resample_poly`). ``frame=K`` hands the model ``K`` consecutive samples per step (channels
``K``, length ``ceil(max_length / K)``; ``max_length`` still counts samples): the full audio band in a K-times
shorter sequence, where a unit's oscillators need not reach the audio frequencies themselves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import tempfile
import warnings
from math import gcd
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

from rhel.data.core import (
    DEFAULT_VAL_FRACTION,
    DataError,
    Dataset,
    DatasetInfo,
    DatasetSpec,
    PadMode,
    apply_frames,
    build_splits,
    check_frame,
    pad_sequences,
)
from rhel.data.download import Remote, download, extract_zip, file_digest

COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{COMMIT}.zip"
#: sha256 of the sorted ``sha256sum`` listing of the 3,000 recordings at COMMIT (the zip itself is not
# byte-stable).
RECORDINGS_DIGEST = "1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959"
RATE = 8000
_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")

INFO = DatasetInfo(
    name="fsdd",
    task="classification",
    num_classes=10,
    output_dim=None,
    length=18262,
    channels=1,
    sampling_rate=float(RATE),
    description=(
        "Free Spoken Digit Dataset: 3,000 raw-audio recordings of the digits 0-9 (6 speakers, 8 kHz, "
        "1,148-18,262 samples, padded at the end with a mask by default). Official split: index 0-4 test "
        "(300), "
        "5-49 train (2,700, validation carved by seed). Chance = 1/10. Licence CC BY-SA 4.0."
    ),
    obtain=f"`rhel data fetch fsdd` downloads {URL} (recordings/ -> <data_dir>/fsdd/recordings/).",
)


def recordings_digest(folder: Path) -> str:
    """sha256 of the ``sha256sum``-style listing (sorted names) of the ``.wav`` files in ``folder``."""
    names = sorted(p.name for p in folder.glob("*.wav"))
    listing = "".join(f"{file_digest(folder / n)}  {n}\n" for n in names)
    return hashlib.sha256(listing.encode()).hexdigest()


def _wav_folder(root: Path) -> Path:
    return root / "recordings" if (root / "recordings").is_dir() else root


def read_wav(path: Path) -> np.ndarray:
    """One mono 16-bit recording as float32 in [-1, 1)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", wavfile.WavFileWarning)  # scipy only warns on a truncated file
            rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError, wavfile.WavFileWarning) as e:
        raise DataError(f"{path}: unreadable or truncated WAV ({e}); fetch the dataset again") from None
    if rate != RATE:
        raise DataError(f"{path}: sampling rate {rate} Hz, expected {RATE}")
    if data.ndim != 1:
        raise DataError(f"{path}: {data.shape[1]} channels, expected mono")
    if data.dtype != np.int16:
        raise DataError(f"{path}: sample type {data.dtype}, expected int16")
    if data.size == 0:
        raise DataError(f"{path}: no samples")
    return data.astype(np.float32) / 32768.0


def load_fsdd(
    root: Path,
    seed: int = 0,
    *,
    sample_rate: int | None = None,
    max_length: int | None = None,
    pad: PadMode = "end",
    frame: int | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Dataset:
    """Load FSDD from ``root`` (``root/recordings/*.wav`` or ``root/*.wav``); see the module doc for
    options."""
    check_frame(frame)
    folder = _wav_folder(root)
    files = sorted(p for p in folder.glob("*.wav") if _NAME.match(p.name))
    if not files:
        raise DataError(f"{folder}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav)")
    rate = sample_rate or RATE
    g = gcd(rate, RATE)
    series, digits, test = [], [], []
    for p in files:
        m = _NAME.match(p.name)
        assert m is not None
        x = read_wav(p)
        if rate != RATE:
            x = resample_poly(x, rate // g, RATE // g).astype(np.float32)
        series.append(x[:, None])
        digits.append(int(m[1]))
        test.append(int(m[3]) < 5)
    if pad == "resample" and max_length is None:
        raise ValueError("pad='resample' needs max_length (the common length)")
    x, mask = pad_sequences(series, max_length, pad, source=str(folder))
    info, x, mask = apply_frames(dataclasses.replace(INFO, sampling_rate=float(rate)), x, mask, frame)
    return build_splits(
        info,
        x,
        np.asarray(digits),
        mask,
        seed=seed,
        test_index=np.asarray(test),
        val_fraction=val_fraction,
        classes=tuple(str(d) for d in range(10)),
        source=str(folder),
    )


def fetch_fsdd(folder: Path, progress: bool = True) -> Path:
    """Download the repository zip at the pinned commit, keep ``recordings/``, verify the recordings'
    digest."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = download(Remote(f"fsdd-{COMMIT[:12]}.zip", (URL,)), folder, progress=progress)
    with tempfile.TemporaryDirectory(prefix=".fsdd-", dir=folder) as tmp:
        extract_zip(archive, Path(tmp))
        found = list(Path(tmp).glob("*/recordings"))
        if len(found) != 1:
            raise DataError(f"{archive}: no recordings/ folder inside")
        digest = recordings_digest(found[0])
        if digest != RECORDINGS_DIGEST:
            raise DataError(f"{archive}: recordings digest {digest} != expected {RECORDINGS_DIGEST}")
        target = folder / "recordings"
        if target.exists():
            shutil.rmtree(target)
        found[0].rename(target)
    return folder


def specs() -> list[DatasetSpec]:
    return [DatasetSpec(INFO, load_fsdd, folders=("fsdd",), fetch=fetch_fsdd)]
