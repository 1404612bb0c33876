"""Core types and the helpers every loader shares: one validation, one split, one padding/resampling path.

Every loader in :mod:`rhel.data` ends by calling :func:`build_splits` (or :func:`make_split` for splits it
carves
itself), so all datasets are validated, typed and split the same way:

* inputs are ``float32`` arrays ``(N, L, C)``; a boolean ``mask`` ``(N, L)`` marks the valid steps of padded
  series (``None`` when every series has the full length);
* classification targets are ``int64`` class indices ``(N,)``; regression targets are ``float32``
  ``(N, T, output_dim)``, aligned with the input as described by :attr:`DatasetInfo.target_stride`;
* splits are drawn from ``numpy.random.default_rng(seed)``: the same seed always gives the same split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "DataError",
    "DownloadError",
    "UnknownDatasetError",
    "DatasetInfo",
    "Split",
    "Dataset",
    "DatasetSpec",
    "make_rng",
    "split_indices",
    "check_finite",
    "check_classes",
    "check_class_indices",
    "check_regression_targets",
    "encode_labels",
    "pad_sequences",
    "resample_length",
    "check_frame",
    "to_frames",
    "apply_frames",
    "make_split",
    "build_splits",
    "DEFAULT_FRACTIONS",
    "DEFAULT_VAL_FRACTION",
]

#: train / validation / test fractions used when a dataset has no official split (or the paper re-splits it).
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.70, 0.15, 0.15)
#: share of an official training set carved out (by seed) as the validation set.
DEFAULT_VAL_FRACTION: float = 0.15

Task = Literal["classification", "regression"]
PadMode = Literal["end", "start", "resample"]


class DataError(ValueError):
    """Bad data: a checksum mismatch, a truncated or malformed file, a ragged or wrong-shape series, NaN/Inf
    values.

    The message always names the file (or dataset) and the position of the problem.
    """


class UnknownDatasetError(DataError, KeyError):
    """A name that is neither a registered dataset nor an existing path (also a ``KeyError``, for lookups)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DownloadError(DataError):
    """A file could not be downloaded; the message says which URL to fetch by hand and where to put the
    file."""


@dataclass(frozen=True)
class DatasetInfo:
    """Static metadata of a dataset (available without loading the data).

    ``length`` and ``channels`` describe the default options; a loader called with other options (``length=``,
    ``max_length=``, ``sample_rate=``) reports the actual values in the ``info`` of the :class:`Dataset` it
    returns.

    Regression targets ``(N, T, output_dim)`` are read at the ends of the last ``T`` blocks of
    ``target_stride`` input steps: target ``k`` belongs to input step ``L - (T - 1 - k) * target_stride - 1``.
    """

    name: str
    task: Task
    num_classes: int | None
    output_dim: int | None
    length: int
    channels: int
    sampling_rate: float | None
    description: str
    obtain: str
    target_stride: int = 1

    def summary(self) -> str:
        """A short human-readable block (used by ``rhel data info``)."""
        size = f"{self.num_classes} classes" if self.task == "classification" else f"{self.output_dim} outputs"
        rate = f"{self.sampling_rate:g} Hz" if self.sampling_rate else "n/a"
        lines = [
            f"name:          {self.name}",
            f"task:          {self.task} ({size})",
            f"length:        {self.length} steps",
            f"channels:      {self.channels}",
            f"sampling rate: {rate}",
        ]
        if self.task == "regression":
            lines.append(f"target stride: one target per {self.target_stride} step(s), at the end of the sequence")
        lines += [f"description:   {self.description}", f"obtain:        {self.obtain}"]
        return "\n".join(lines)


@dataclass(frozen=True)
class Split:
    """One split: ``inputs`` float32 ``(N, L, C)``, ``targets`` (see module doc), optional bool ``mask``
    ``(N, L)``."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: metadata plus the train / validation / test splits (and class names when known)."""

    info: DatasetInfo
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...] | None = field(default=None)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def standardized(self) -> Dataset:
        """Per-channel standardisation with the mean and std of the (valid steps of the) training inputs."""
        x, m = self.train.inputs, self.train.mask
        values = x[m] if m is not None else x.reshape(-1, x.shape[-1])
        mean = values.mean(axis=0, dtype=np.float64)
        std = values.std(axis=0, dtype=np.float64)
        std = np.where(std > 0, std, 1.0)

        def apply(s: Split) -> Split:
            z = ((s.inputs - mean) / std).astype(np.float32)
            if s.mask is not None:
                z[~s.mask] = 0.0
            return dataclasses.replace(s, inputs=z)

        return dataclasses.replace(self, train=apply(self.train), val=apply(self.val), test=apply(self.test))


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, fetch and load one named dataset.

    ``load(root, seed=..., **options)`` gets the dataset folder (``None`` for generated datasets);
    ``fetch(folder, progress=...)`` downloads into ``folder``; ``folders`` are candidate folder names
    relative to the data directory; ``extra_paths`` are absolute fallbacks (e.g. a system package's install
    location).
    """

    info: DatasetInfo
    load: Callable[..., Dataset]
    folders: tuple[str, ...] = ()
    fetch: Callable[..., Path] | None = None
    extra_paths: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


def make_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """The one source of randomness for splits and synthetic data."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def split_indices(
    n: int,
    fractions: Sequence[float],
    seed: int | np.random.Generator,
    labels: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Split ``range(n)`` into ``len(fractions)`` disjoint, sorted index arrays, deterministically from
    ``seed``.

    Part sizes are exact (cumulative rounding of ``fractions * n``; the last part takes the rest). With
    ``labels`` the split is stratified: each class is shuffled and its members spread evenly over ``[0, 1)``
    before the cut, so every part gets close to its share of every class (exactly, up to one example per
    class and part).
    """
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions.tolist()}")
    rng = make_rng(seed)
    if labels is None:
        order = rng.permutation(n)
    else:
        labels = np.asarray(labels)
        if labels.shape[0] != n:
            raise ValueError(f"{labels.shape[0]} labels for {n} examples")
        key = np.empty(n, dtype=np.float64)
        for cls in np.unique(labels):
            members = np.flatnonzero(labels == cls)
            ranks = rng.permutation(members.size)
            key[members] = (ranks + rng.random()) / members.size
        order = np.lexsort((rng.random(n), key))
    bounds = np.round(np.cumsum(fractions)[:-1] * n).astype(int)
    return [np.sort(part) for part in np.split(order, bounds)]


def check_finite(array: np.ndarray, source: str, mask: np.ndarray | None = None) -> None:
    """Raise :class:`DataError` naming ``source`` and the first position holding NaN or Inf (valid steps
    only)."""
    bad = ~np.isfinite(array)
    if mask is not None:
        bad &= mask.reshape(mask.shape + (1,) * (array.ndim - mask.ndim))
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        value = array[pos]
        count = int(bad.sum())
        raise DataError(f"{source}: {value} at index {pos} ({count} non-finite value(s) in all)")


def check_class_indices(targets: np.ndarray, source: str, num_classes: int | None = None) -> np.ndarray:
    """Class labels as ``int64`` indices; raise :class:`DataError` naming ``source`` and the first label that is
    not an integer (``1.5``), negative (``-1``) or, when ``num_classes`` is given, not below it (``7`` of 4)."""
    targets = np.asarray(targets)
    if targets.dtype == bool or not (
        np.issubdtype(targets.dtype, np.integer) or np.issubdtype(targets.dtype, np.floating)
    ):
        raise DataError(f"{source}: class labels must be integer indices, got dtype {targets.dtype}")
    problems = (
        (
            ~np.isfinite(targets) | (targets != np.round(targets))
            if np.issubdtype(targets.dtype, np.floating)
            else None,
            "is not an integer class index",
        ),
        (targets < 0, "is negative; class indices run from 0 to num_classes - 1"),
        (targets >= num_classes if num_classes is not None else None, f"is out of range for {num_classes} classes"),
    )
    for bad, what in problems:
        if bad is not None and bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{source}: label {targets[i]:g} at index {i} {what} ({int(bad.sum())} such label(s))")
    return targets.astype(np.int64, copy=False)


def check_classes(dataset: Dataset, source: str) -> None:
    """Refuse a classification dataset whose labels make its accuracy meaningless: out-of-range indices, a single
    class (trivially "100 %"), or a class that occurs only in the test split (never trained on)."""
    if dataset.info.task != "classification":
        return
    k = dataset.info.num_classes
    for name, split in dataset.splits().items():
        check_class_indices(split.targets, f"{source} ({name})", k)
    seen = np.unique(np.concatenate([s.targets for s in dataset.splits().values()]))
    if seen.size < 2:
        raise DataError(
            f"{source}: every example has the same class ({_class_name(dataset, seen)}); "
            "a one-class dataset trains to a meaningless 100 % accuracy"
        )
    fit = np.union1d(dataset.train.targets, dataset.val.targets)
    only_test = np.setdiff1d(np.unique(dataset.test.targets), fit)
    if only_test.size:
        raise DataError(
            f"{source}: class(es) {_class_name(dataset, only_test)} occur only in the test split, never in "
            "train/validation; re-split (resplit=True) or fix the labels"
        )


def _class_name(dataset: Dataset, indices: np.ndarray) -> str:
    names = dataset.classes
    return ", ".join(repr(names[i]) if names is not None and i < len(names) else str(i) for i in indices.tolist())


def encode_labels(raw: np.ndarray, classes: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map raw labels (strings or numbers) to ``int64`` indices into ``classes`` (sorted unique names by
    default).

    Numeric labels are sorted numerically (so ``"10"`` comes after ``"9"``).
    """
    names = np.asarray([str(v) for v in np.asarray(raw).ravel()])
    if classes is None:
        uniq = np.unique(names)
        try:
            uniq = np.asarray(sorted(uniq, key=float))
        except ValueError:
            pass
        classes = tuple(str(c) for c in uniq)
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        idx = np.fromiter((lookup[v] for v in names), dtype=np.int64, count=names.size)
    except KeyError as e:
        raise DataError(f"label {e.args[0]!r} is not one of the classes {list(classes)}") from None
    return idx, tuple(classes)


def resample_length(x: np.ndarray, length: int) -> np.ndarray:
    """Resample a ``(L, C)`` series to ``length`` steps by linear interpolation on a common [0, 1] grid."""
    if x.shape[0] == length:
        return x
    if x.shape[0] == 1:
        return np.repeat(x, length, axis=0)
    old = np.linspace(0.0, 1.0, x.shape[0])
    new = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(new, old, x[:, c]) for c in range(x.shape[1])], axis=1)


def check_frame(frame: object) -> None:
    """Refuse a ``frame`` option that is not a positive number of steps."""
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 1):
        raise ValueError(f"frame must be a positive number of samples per step, got {frame!r}")


def to_frames(x: np.ndarray, mask: np.ndarray | None, frame: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(N, L, C)`` series as ``(N, ceil(L / frame), frame * C)`` frames of ``frame`` consecutive steps
    (zero-padded at the end; channel ``k * C + c`` is channel ``c`` of the frame's ``k``-th step). Every sample
    is kept, in a ``frame``-times shorter sequence; a frame is valid when any of its steps is (whether the series
    are padded at the end or at the start)."""
    n, length, channels = x.shape
    steps = -(-length // frame)
    padded = np.zeros((n, steps * frame, channels), dtype=x.dtype)
    padded[:, :length] = x
    if mask is not None:
        valid = np.zeros((n, steps * frame), dtype=bool)
        valid[:, :length] = mask
        mask = valid.reshape(n, steps, frame).any(axis=2)
    return padded.reshape(n, steps, frame * channels), mask


def apply_frames(
    info: DatasetInfo, x: np.ndarray, mask: np.ndarray | None, frame: int | None
) -> tuple[DatasetInfo, np.ndarray, np.ndarray | None]:
    """A loader's ``frame`` option (checked by :func:`check_frame`): ``None`` or 1 leaves everything as it is;
    ``K`` > 1 hands the model ``K`` consecutive steps per step (:func:`to_frames`), at ``1/K`` of the sampling rate
    (when the dataset has one). Length and channels follow the arrays (:func:`build_splits`)."""
    if frame is None or frame == 1:
        return info, x, mask
    x, mask = to_frames(x, mask, frame)
    rate = None if info.sampling_rate is None else info.sampling_rate / frame
    return dataclasses.replace(info, sampling_rate=rate), x, mask


def pad_sequences(
    series: Sequence[np.ndarray],
    length: int | None = None,
    pad: PadMode = "end",
    source: str = "data",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Bring variable-length ``(L_i, C)`` series to one length; the explicit choice for ragged data.

    * ``pad="end"`` (default): zeros after the series, ``mask`` marks the valid steps; longer series are
      cropped (the first ``length`` steps are kept).
    * ``pad="start"``: zeros before the series (so every series ends at the last step), cropping keeps the
      end.
    * ``pad="resample"``: every series is linearly resampled to ``length`` steps; no mask.

    ``length=None`` means the longest series. The mask is ``None`` when no step is padding.
    """
    if not series:
        raise DataError(f"{source}: no series")
    channels = {s.shape[1] for s in series}
    if len(channels) != 1:
        raise DataError(f"{source}: series have different channel counts {sorted(channels)}")
    lengths = np.array([s.shape[0] for s in series])
    if length is None:
        length = int(lengths.max())
    (c,) = channels
    out = np.zeros((len(series), length, c), dtype=np.float32)
    if pad == "resample":
        for i, s in enumerate(series):
            out[i] = resample_length(s, length)
        return out, None
    if pad not in ("end", "start"):
        raise ValueError(f"pad must be 'end', 'start' or 'resample', got {pad!r}")
    mask = np.zeros((len(series), length), dtype=bool)
    for i, s in enumerate(series):
        k = min(s.shape[0], length)
        if pad == "end":
            out[i, :k] = s[:k]
            mask[i, :k] = True
        else:
            out[i, length - k :] = s[s.shape[0] - k :]
            mask[i, length - k :] = True
    return out, (None if mask.all() else mask)


def make_split(
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None,
    task: Task,
    source: str,
) -> Split:
    """The one validation helper: check shapes, types and finiteness, and return a typed :class:`Split`."""
    inputs = np.asarray(inputs)
    if inputs.ndim != 3:
        raise DataError(f"{source}: inputs must be (N, L, C), got shape {inputs.shape}")
    n, length, _ = inputs.shape
    inputs = inputs.astype(np.float32, copy=False)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n, length):
            raise DataError(f"{source}: mask shape {mask.shape} does not match inputs {(n, length)}")
    check_finite(inputs, f"{source} inputs", mask)
    targets = np.asarray(targets)
    if targets.shape[0] != n:
        raise DataError(f"{source}: {targets.shape[0]} targets for {n} inputs")
    if task == "classification":
        if targets.ndim != 1:
            raise DataError(f"{source}: classification targets must be (N,), got {targets.shape}")
        targets = check_class_indices(targets, source)
    else:
        if targets.ndim != 3:
            raise DataError(f"{source}: regression targets must be (N, T, output_dim), got {targets.shape}")
        targets = targets.astype(np.float32, copy=False)
        check_finite(targets, f"{source} targets")
    return Split(np.ascontiguousarray(inputs), targets, mask)


def _take(x: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if x is None else x[idx]


def build_splits(
    info: DatasetInfo,
    inputs: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    seed: int | np.random.Generator = 0,
    test_index: np.ndarray | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    classes: Sequence[str] | None = None,
    source: str | None = None,
) -> Dataset:
    """Split one pool of examples into train / validation / test and validate them (used by every loader).

    * ``test_index=None``: split the pool ``fractions`` (70/15/15) by ``seed``, stratified for classification.
    * ``test_index`` given (an official split): those examples are the test set; ``val_fraction`` of the rest
      is carved out as validation by ``seed`` (stratified for classification).
    """
    source = source or info.name
    n = inputs.shape[0]
    strat = targets if info.task == "classification" else None
    if test_index is None:
        train_idx, val_idx, test_idx = split_indices(n, fractions, seed, strat)
    else:
        test_idx = np.asarray(test_index)
        if test_idx.dtype == bool:
            test_idx = np.flatnonzero(test_idx)
        pool = np.setdiff1d(np.arange(n), test_idx)
        sub = split_indices(pool.size, (1.0 - val_fraction, val_fraction), seed, _take(strat, pool))
        train_idx, val_idx = pool[sub[0]], pool[sub[1]]
    parts = [
        make_split(inputs[i], targets[i], _take(mask, i), info.task, f"{source} ({name})")
        for name, i in (("train", train_idx), ("val", val_idx), ("test", test_idx))
    ]
    if inputs.shape[1] != info.length or inputs.shape[2] != info.channels:
        info = dataclasses.replace(info, length=int(inputs.shape[1]), channels=int(inputs.shape[2]))
    dataset = Dataset(info, *parts, classes=tuple(classes) if classes is not None else None)
    check_classes(dataset, source)
    check_regression_targets(dataset, source)
    return dataset


def check_regression_targets(dataset: Dataset, source: str) -> None:
    """Refuse regression targets whose shape would broadcast against the predictions ``(N, T, output_dim)``:
    splits with different ``(T, output_dim)``, an ``output_dim`` other than ``info.output_dim``, or more targets
    than the input has steps."""
    if dataset.info.task != "regression":
        return
    shapes = {name: s.targets.shape[1:] for name, s in dataset.splits().items()}
    t, d = shapes["train"]
    for name, shape in shapes.items():
        if shape != (t, d):
            raise DataError(
                f"{source} ({name}): regression targets of shape (N, {shape[0]}, {shape[1]}) do not match train's "
                f"(N, {t}, {d}); predictions would broadcast against them"
            )
    if dataset.info.output_dim is not None and d != dataset.info.output_dim:
        raise DataError(
            f"{source}: regression targets have {d} outputs, the dataset declares {dataset.info.output_dim}"
        )
    length = dataset.train.inputs.shape[1]
    if (t - 1) * dataset.info.target_stride >= length:
        raise DataError(
            f"{source}: {t} targets every {dataset.info.target_stride} step(s) do not fit in {length} input steps"
        )
