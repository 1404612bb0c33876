"""Sequential / permuted MNIST and Fashion-MNIST: 784-step pixel sequences (1 channel), 10 classes.

IDX files (``train-images-idx3-ubyte[.gz]`` etc.) in ``<data_dir>/mnist/`` (or ``<data_dir>/fashion-mnist/``,
falling back to ``/usr/share/datasets/fashion-mnist``, where Debian's ``dataset-fashion-mnist`` installs
them). Official split: 60,000 train (``val_fraction`` carved by seed, stratified) / 10,000 test. Pixels are
scaled to [0, 1] (``scale="unit"``, default) or standardised with the training mean and std
(``scale="standard"``). ``permuted=True`` applies one fixed pixel permutation drawn from ``permutation_seed``
(default: ``seed``).
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path
from typing import Literal

import numpy as np

from rhel.data.core import DEFAULT_VAL_FRACTION, DataError, Dataset, DatasetInfo, DatasetSpec, build_splits, make_rng
from rhel.data.download import Remote, download

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
#: official md5 of the .gz files (as published by torchvision / the Fashion-MNIST README), plus the sha256 of
# the
#: bit-exact rebuilds documented in the workplace's shared copy.
MNIST_CHECKSUMS = {
    "train-images-idx3-ubyte": (
        "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "sha256:db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19",
    ),
    "train-labels-idx1-ubyte": (
        "md5:d53e105ee54ea40749a09fcbcd1e9432",
        "sha256:ec02e7948609e5754d47881c09b8afdd8dfa60600b9e5388c8c54a67069ec772",
    ),
    "t10k-images-idx3-ubyte": (
        "md5:9fb629c4189551a2d022fa330f9573f3",
        "sha256:167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
    ),
    "t10k-labels-idx1-ubyte": (
        "md5:ec29112dd5afa0611ce80d1b7f02629c",
        "sha256:fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
    ),
}
FASHION_CHECKSUMS = {
    "train-images-idx3-ubyte": ("md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",),
    "train-labels-idx1-ubyte": ("md5:25c81989df183df01b3e8a0aad5dffbe",),
    "t10k-images-idx3-ubyte": ("md5:bef4ecab320f06d8554ea6380940ec79",),
    "t10k-labels-idx1-ubyte": ("md5:bb300cfdad3c16e7a12a480ee83cd310",),
}
FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"


def _info(name: str, fashion: bool, permuted: bool) -> DatasetInfo:
    what = "Fashion-MNIST (Zalando, 10 clothing classes)" if fashion else "MNIST handwritten digits"
    order = "pixels in a fixed random order (permutation from the seed)" if permuted else "pixels in raster order"
    folder = "fashion-mnist" if fashion else "mnist"
    extra = f", or install Debian's dataset-fashion-mnist ({FASHION_SYSTEM_DIR})" if fashion else ""
    return DatasetInfo(
        name=name,
        task="classification",
        num_classes=10,
        output_dim=None,
        length=784,
        channels=1,
        sampling_rate=None,
        description=(
            f"Sequential {what}: 28x28 images read as 784-step sequences, {order}, scaled to [0, 1]. "
            "Official split 60,000 train (validation carved by seed) / 10,000 test. Chance = 1/10."
        ),
        obtain=f"`rhel data fetch {name}` downloads the four IDX .gz files into <data_dir>/{folder}/{extra}.",
    )


def _find(root: Path, stem: str) -> Path:
    for cand in (root / f"{stem}.gz", root / stem, root / stem.replace("-idx", ".idx")):
        if cand.is_file():
            return cand
    raise DataError(f"{root}: missing {stem}.gz (or {stem})")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or raw) of unsigned bytes, checking magic number and size."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: unreadable or truncated ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path}: {len(raw) - header} data bytes, header shape {shape} needs {expected} (truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(
    root: Path,
    seed: int = 0,
    *,
    permuted: bool = False,
    permutation_seed: int | None = None,
    fashion: bool = False,
    scale: Literal["unit", "standard"] = "unit",
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Dataset:
    """Load (permuted / Fashion-) MNIST from the IDX files in ``root`` as ``(N, 784, 1)`` float32
    sequences."""
    arrays = {stem: read_idx(_find(root, stem)) for stem in FILES}
    images = np.concatenate([arrays[FILES[0]], arrays[FILES[2]]])
    labels = np.concatenate([arrays[FILES[1]], arrays[FILES[3]]]).astype(np.int64)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
        raise DataError(f"{root}: images {images.shape} / labels {labels.shape} are not N x 28 x 28 / N")
    if labels.max() > 9:
        raise DataError(f"{root}: label {labels.max()} out of range 0..9")
    x = images.reshape(images.shape[0], 784, 1).astype(np.float32) / 255.0
    n_train = arrays[FILES[0]].shape[0]
    if scale == "standard":
        mean, std = float(x[:n_train].mean()), float(x[:n_train].std())
        x = (x - mean) / std
    elif scale != "unit":
        raise ValueError(f"scale must be 'unit' or 'standard', got {scale!r}")
    name = "fashion_mnist" if fashion else "mnist"
    if permuted:
        perm = make_rng(seed if permutation_seed is None else permutation_seed).permutation(784)
        x = x[:, perm]
        name = f"permuted_{name}"
    info = _info(name, fashion, permuted)
    if scale == "standard":
        info = dataclasses.replace(info, description=info.description.replace("scaled to [0, 1]", "standardised"))
    is_test = np.arange(x.shape[0]) >= n_train
    return build_splits(
        info, x, labels, None, seed=seed, test_index=is_test, val_fraction=val_fraction, source=str(root)
    )


def _fetcher(fashion: bool):
    urls, sums = (FASHION_URLS, FASHION_CHECKSUMS) if fashion else (MNIST_URLS, MNIST_CHECKSUMS)

    def fetch(folder: Path, progress: bool = True) -> Path:
        for stem in FILES:
            if (folder / stem).is_file():
                continue
            download(
                Remote(f"{stem}.gz", tuple(u + f"{stem}.gz" for u in urls), sums[stem]),
                folder,
                progress=progress,
            )
        return folder

    return fetch


def specs() -> list[DatasetSpec]:
    out = []
    for fashion in (False, True):
        base = "fashion_mnist" if fashion else "mnist"
        folders = ("fashion-mnist",) if fashion else ("mnist",)
        extra = (FASHION_SYSTEM_DIR,) if fashion else ()
        for permuted in (False, True):
            name = f"permuted_{base}" if permuted else base
            out.append(
                DatasetSpec(
                    _info(name, fashion, permuted),
                    load_mnist,
                    folders=folders,
                    fetch=_fetcher(fashion),
                    extra_paths=extra,
                    defaults={"permuted": permuted, "fashion": fashion},
                )
            )
    return out
