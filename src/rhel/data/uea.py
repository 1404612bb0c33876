"""The paper's UEA multivariate problems (and HandMovementDirection, a real one in the per-dimension ARFF
layout).

As in the paper (and the Log-NCDE / LinOSS preprocessing it follows), TRAIN and TEST are merged, repeated
series are dropped, and the pool is re-split 70/15/15 by seed (``resplit=False`` keeps the archive's split
instead). All six paper problems have equal-length series, so no padding happens by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhel.data.archive import archive_urls, fetch_archive_problem, load_archive_folder
from rhel.data.core import Dataset, DatasetInfo, DatasetSpec

#: name -> (train, test, channels, length, classes, sampling rate (Hz) or None, description)
UEA_PROBLEMS: dict[str, tuple[int, int, int, int, int, float | None, str]] = {
    "EigenWorms": (
        128,
        131,
        6,
        17984,
        5,
        None,
        "C. elegans motion as six eigenworm coefficients; wild type vs 4 mutants",
    ),
    "SelfRegulationSCP1": (
        268,
        293,
        6,
        896,
        2,
        256.0,
        "slow cortical potentials (EEG), healthy subject, 3.5 s trials",
    ),
    "SelfRegulationSCP2": (
        200,
        180,
        7,
        1152,
        2,
        256.0,
        "slow cortical potentials (EEG), ALS patient, 4.5 s trials",
    ),
    "EthanolConcentration": (261, 263, 3, 1751, 4, None, "raw spectra of whisky bottles, 4 ethanol levels"),
    "Heartbeat": (
        204,
        205,
        61,
        405,
        2,
        None,
        "heart-sound spectrograms (PhysioNet 2016), normal vs abnormal",
    ),
    "MotorImagery": (
        278,
        100,
        64,
        3000,
        2,
        1000.0,
        "ECoG (BCI III dataset I), imagined finger vs tongue movement",
    ),
    "HandMovementDirection": (
        160,
        74,
        10,
        400,
        4,
        None,
        "MEG (BCI IV dataset 3), direction of a wrist movement",
    ),
}
PAPER_PROBLEMS = tuple(k for k in UEA_PROBLEMS if k != "HandMovementDirection")


def _load(root: Path, seed: int = 0, *, resplit: bool = True, dedupe: bool = True, **options: Any) -> Dataset:
    info = _info(root.name)
    return load_archive_folder(root, info, name=info.name, seed=seed, resplit=resplit, dedupe=dedupe, **options)


def _info(name: str) -> DatasetInfo:
    key = {k.lower(): k for k in UEA_PROBLEMS}.get(name.lower(), name)
    train, test, channels, length, classes, rate, what = UEA_PROBLEMS[key]
    return DatasetInfo(
        name=key,
        task="classification",
        num_classes=classes,
        output_dim=None,
        length=length,
        channels=channels,
        sampling_rate=rate,
        description=(
            f"UEA archive: {what}. {train} train + {test} test cases, merged and re-split 70/15/15 per seed "
            f"(duplicates dropped) as in the paper; chance = 1/{classes}."
        ),
        obtain=(
            f"`rhel data fetch {key}` downloads {archive_urls(key)[0]} into <data_dir>/{key}/; any archive "
            f"layout "
            f"(.ts, .arff, per-dimension .arff) unpacked there works."
        ),
    )


def _fetch(folder: Path, progress: bool = True) -> Path:
    return fetch_archive_problem(folder.name, folder, progress=progress)


def specs() -> list[DatasetSpec]:
    return [
        DatasetSpec(info=_info(name), load=_load, folders=(name, f"uea/{name}"), fetch=_fetch) for name in UEA_PROBLEMS
    ]
