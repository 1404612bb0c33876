"""Long univariate UCR problems (the 2018 archive's tab-separated layout, label first).

They keep the archive's official TEST split; validation is carved from TRAIN by seed (stratified). Note that
the Pig* problems have only 2 training series per class, so a validation split takes one of them from some
classes (``val_fraction=0`` keeps all of TRAIN for training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhel.data.archive import archive_urls, fetch_archive_problem, load_archive_folder
from rhel.data.core import Dataset, DatasetInfo, DatasetSpec

#: name -> (train, test, length, classes, description)
UCR_PROBLEMS: dict[str, tuple[int, int, int, int, str]] = {
    "Rock": (20, 50, 2844, 4, "rock spectra (wavelength, not time)"),
    "PigAirwayPressure": (104, 208, 2000, 52, "airway pressure of pigs, one class per animal"),
    "PigArtPressure": (104, 208, 2000, 52, "arterial blood pressure of pigs, one class per animal"),
    "PigCVP": (104, 208, 2000, 52, "central venous pressure of pigs, one class per animal"),
    "ACSF1": (100, 100, 1460, 10, "appliance power consumption"),
    "EOGHorizontalSignal": (362, 362, 1250, 12, "electro-oculography, horizontal"),
    "EOGVerticalSignal": (362, 362, 1250, 12, "electro-oculography, vertical"),
    "Worms": (181, 77, 900, 5, "C. elegans motion, first eigenworm, 5 classes"),
    "WormsTwoClass": (181, 77, 900, 2, "C. elegans motion, wild type vs mutant"),
}


def _info(name: str) -> DatasetInfo:
    train, test, length, classes, what = UCR_PROBLEMS[name]
    return DatasetInfo(
        name=name,
        task="classification",
        num_classes=classes,
        output_dim=None,
        length=length,
        channels=1,
        sampling_rate=None,
        description=(
            f"UCR 2018 archive: {what}. Official split: {train} train (validation carved from it by seed), "
            f"{test} test; chance ~ 1/{classes}."
        ),
        obtain=(
            f"`rhel data fetch {name}` downloads {archive_urls(name)[0]} into <data_dir>/ucr-long/{name}/; "
            f"or put "
            f"{name}_TRAIN.tsv / {name}_TEST.tsv from the UCR 2018 archive there."
        ),
    )


def _load(root: Path, seed: int = 0, **options: Any) -> Dataset:
    name = next(k for k in UCR_PROBLEMS if k.lower() == root.name.lower())
    return load_archive_folder(root, _info(name), name=name, seed=seed, **options)


def _fetch(folder: Path, progress: bool = True) -> Path:
    return fetch_archive_problem(folder.name, folder, progress=progress)


def specs() -> list[DatasetSpec]:
    return [
        DatasetSpec(info=_info(n), load=_load, folders=(f"ucr-long/{n}", f"ucr/{n}", n), fetch=_fetch)
        for n in UCR_PROBLEMS
    ]
