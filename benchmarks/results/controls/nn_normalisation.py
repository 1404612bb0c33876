"""1-NN Euclidean accuracy of a study config's data, raw and per-series z-normalised, at several resampled lengths:
on the test split (the archive's protocol: TRAIN, validation included, as the pool) and leave-one-out on the TRAIN
series alone (what a user may look at without the test split). Issue 14; RESULTS.md, Rock note.

    PYTHONPATH=src python benchmarks/results/controls/nn_normalisation.py rock-linear 711 2844

Data from DATA_DIR (default ../shared/data). Seed 0's split (the pool is the whole TRAIN set for every seed).
"""

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np


def znorm(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)


def main(name: str, lengths: list[int]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/: the study's 1-NN helpers
    from results_table import nearest, nn_splits

    from rhel.training.config import load_config
    from rhel.training.experiment import load_dataset

    data_dir = os.environ.get("DATA_DIR", "../shared/data")
    for length in lengths:
        config = load_config(f"datasets/{name}")
        options = {**config.data.options, "max_length": length}
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=data_dir, options=options))
        pool, labels, test, test_labels = nn_splits(load_dataset(config, 0))
        for tag, fn in (("raw", lambda x: x), ("z-normalised", znorm)):
            acc_test = np.mean(labels[nearest(fn(test), fn(pool))] == test_labels)
            acc_loo = np.mean(labels[nearest(fn(pool), fn(pool), leave_one_out=True)] == labels)
            print(
                f"{name} length {length:>6} {tag:>12}: test 1-NN ED {100 * acc_test:5.1f}%   "
                f"leave-one-out on TRAIN ({len(pool)} series) {100 * acc_loo:5.1f}%"
            )


if __name__ == "__main__":
    main(sys.argv[1], [int(a) for a in sys.argv[2:]])
