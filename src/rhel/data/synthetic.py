"""Synthetic long-range tasks, generated in-process from a seed at any length (no files needed).

* ``long_range_pattern`` (classification, the embedded default of ``rhel train``): a short class-coded burst
  early in a long noisy sequence; the rest is noise, so the class can only be read from what happened long
  ago.
* ``copy_memory`` (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): recall ``n_copy`` symbols seen at
  the start after a long blank delay.
* ``adding`` (Hochreiter & Schmidhuber 1997): the sum of the two marked values of a long random sequence, minus 1
  (centred in [-1, 1), the range of the tanh regression head).

Each split is drawn from its own child stream of ``numpy.random.default_rng(seed)``, so a seed fixes the data
and changing ``n_train`` does not change the validation or test sets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rhel.data.core import Dataset, DatasetInfo, DatasetSpec, Split, make_rng, make_split

Generator = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


def _dataset(info: DatasetInfo, gen: Generator, seed: int, sizes: tuple[int, int, int]) -> Dataset:
    streams = make_rng(seed).spawn(3)
    splits: list[Split] = []
    for name, rng, n in zip(("train", "val", "test"), streams, sizes, strict=True):
        x, y = gen(rng, n)
        splits.append(make_split(x, y, None, info.task, f"{info.name} ({name})"))
    x = splits[0].inputs
    return Dataset(dataclasses.replace(info, length=int(x.shape[1]), channels=int(x.shape[2])), *splits)


# --- long_range_pattern ---

LRP_DEFAULTS = dict(length=512, num_classes=4, channels=4, burst=16, window=0.125, amplitude=1.0, noise=0.3)


def _lrp_info(length: int, num_classes: int, channels: int) -> DatasetInfo:
    return DatasetInfo(
        name="long_range_pattern",
        task="classification",
        num_classes=num_classes,
        output_dim=None,
        length=length,
        channels=channels,
        sampling_rate=None,
        description=(
            "Generated: Gaussian noise in every channel; one burst of `burst` steps (amplitude `amplitude`) "
            "in the "
            "class's channel (class k -> channel k mod channels, sign + for k < channels, - beyond) at a "
            "random "
            "position within the first `window` fraction of the sequence. Nothing after the burst depends on "
            "the "
            f"class. Chance = 1/{num_classes}. Defaults: {LRP_DEFAULTS}, 1024/256/256 examples."
        ),
        obtain="generated in-process from the seed (no files)",
    )


def load_long_range_pattern(
    root: Path | None = None,
    seed: int = 0,
    *,
    length: int = 512,
    num_classes: int = 4,
    channels: int = 4,
    burst: int = 16,
    window: float = 0.125,
    amplitude: float = 1.0,
    noise: float = 0.3,
    n_train: int = 1024,
    n_val: int = 256,
    n_test: int = 256,
) -> Dataset:
    """Class-coded early burst in a long noisy sequence (see module doc); ``window`` is a fraction of
    ``length``."""
    if not 1 <= num_classes <= 2 * channels:
        raise ValueError(f"num_classes must be in 1..2*channels = {2 * channels}, got {num_classes}")
    span = max(int(round(window * length)), burst)
    if span > length:
        raise ValueError(f"burst of {burst} steps does not fit in length {length}")

    def gen(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, num_classes, size=n)
        x = noise * rng.standard_normal((n, length, channels))
        start = rng.integers(0, span - burst + 1, size=n)
        steps = start[:, None] + np.arange(burst)[None, :]
        chan = (y % channels)[:, None]
        sign = np.where(y < channels, 1.0, -1.0)[:, None]
        x[np.arange(n)[:, None], steps, chan] += amplitude * sign
        return x.astype(np.float32), y

    return _dataset(_lrp_info(length, num_classes, channels), gen, seed, (n_train, n_val, n_test))


# --- copy_memory ---


def _copy_info(length: int, n_copy: int, n_symbols: int) -> DatasetInfo:
    chance = (n_symbols - 1) / n_symbols**2
    return DatasetInfo(
        name="copy_memory",
        task="regression",
        num_classes=None,
        output_dim=n_symbols,
        length=length,
        channels=n_symbols + 2,
        sampling_rate=None,
        description=(
            f"Generated copy task: {n_copy} random symbols (of {n_symbols}) one-hot at the start, blanks, a "
            f"delimiter "
            f"{n_copy + 1} steps before the end; targets are the one-hot symbols at the last {n_copy} steps "
            f"(input channels: 0 blank, 1..{n_symbols} symbols, {n_symbols + 1} delimiter). Chance: "
            f"per-symbol "
            f"accuracy 1/{n_symbols}, MSE {chance:.4f} when predicting 1/{n_symbols} everywhere."
        ),
        obtain="generated in-process from the seed (no files)",
    )


def load_copy_memory(
    root: Path | None = None,
    seed: int = 0,
    *,
    length: int = 512,
    n_copy: int = 10,
    n_symbols: int = 8,
    n_train: int = 1024,
    n_val: int = 256,
    n_test: int = 256,
) -> Dataset:
    """Copy-memory task of total length ``length`` (>= 2 * n_copy + 1); targets ``(N, n_copy, n_symbols)``."""
    if length < 2 * n_copy + 1:
        raise ValueError(f"length must be at least 2 * n_copy + 1 = {2 * n_copy + 1}, got {length}")

    def gen(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        symbols = rng.integers(0, n_symbols, size=(n, n_copy))
        codes = np.zeros((n, length), dtype=np.int64)  # 0 = blank
        codes[:, :n_copy] = symbols + 1
        codes[:, length - n_copy - 1] = n_symbols + 1
        x = np.eye(n_symbols + 2, dtype=np.float32)[codes]
        y = np.eye(n_symbols, dtype=np.float32)[symbols]
        return x, y

    return _dataset(_copy_info(length, n_copy, n_symbols), gen, seed, (n_train, n_val, n_test))


# --- adding ---


def _adding_info(length: int) -> DatasetInfo:
    return DatasetInfo(
        name="adding",
        task="regression",
        num_classes=None,
        output_dim=1,
        length=length,
        channels=2,
        sampling_rate=None,
        description=(
            "Generated adding problem: channel 0 uniform [0, 1) values, channel 1 marks two steps (one in "
            "each "
            "half); the target (at the last step) is the sum of the two marked values minus 1, centred in "
            "[-1, 1) so that the paper's tanh regression head can reach it. Chance: MSE 1/6 ~ 0.1667 when "
            "always predicting 0."
        ),
        obtain="generated in-process from the seed (no files)",
    )


def load_adding(
    root: Path | None = None,
    seed: int = 0,
    *,
    length: int = 512,
    n_train: int = 1024,
    n_val: int = 256,
    n_test: int = 256,
) -> Dataset:
    """Adding problem of length ``length`` (>= 2); targets ``(N, 1, 1)``."""
    if length < 2:
        raise ValueError("length must be at least 2")

    def gen(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        values = rng.random((n, length))
        half = length // 2
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, length, size=n)
        marks = np.zeros((n, length))
        marks[np.arange(n), first] = 1.0
        marks[np.arange(n), second] = 1.0
        y = values[np.arange(n), first] + values[np.arange(n), second] - 1.0
        return np.stack([values, marks], axis=-1).astype(np.float32), y.reshape(n, 1, 1)

    return _dataset(_adding_info(length), gen, seed, (n_train, n_val, n_test))


def specs() -> list[DatasetSpec]:
    return [
        DatasetSpec(_lrp_info(512, 4, 4), load_long_range_pattern),
        DatasetSpec(_copy_info(512, 10, 8), load_copy_memory),
        DatasetSpec(_adding_info(512), load_adding),
    ]
