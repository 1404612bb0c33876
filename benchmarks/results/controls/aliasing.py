"""How much of a UCR problem's signal a shorter resampling folds away: the share of each class's power (TRAIN
series, mean removed) above the Nyquist frequency of the rate reduced by FACTOR, and the strongest period. Issue
14; RESULTS.md, ACSF1 note (the study's configs for the long UCR problems resample by 2 or 4).

    PYTHONPATH=src python benchmarks/results/controls/aliasing.py ACSF1:2 Rock:4 EOGHorizontalSignal:2

Data from DATA_DIR (default ../shared/data). Only the TRAIN series are read (validation and test untouched).
"""

import os
import sys

import numpy as np


def main(problems: list[str]) -> None:
    from rhel.data import load

    data_dir = os.environ.get("DATA_DIR", "../shared/data")
    for arg in problems:
        name, factor = arg.split(":")
        ds = load(name, data_dir=data_dir, seed=0, val_fraction=0.0)
        x = ds.train.inputs[..., 0].astype(np.float64)
        x = x - x.mean(axis=1, keepdims=True)
        power = np.abs(np.fft.rfft(x, axis=1)) ** 2
        freq = np.fft.rfftfreq(x.shape[1])
        above = freq > 0.5 / int(factor)
        shares = []
        for c in np.unique(ds.train.targets):
            p = power[ds.train.targets == c].mean(axis=0)
            shares.append(p[above].sum() / p.sum())
        p = power.mean(axis=0)
        peak = freq[1:][np.argmax(p[1:])]
        print(
            f"{name} ({x.shape[1]} steps, {len(x)} TRAIN series): power above 1/{2 * int(factor)} of the rate "
            f"(lost or aliased by resampling to 1/{factor}): all {100 * p[above].sum() / p.sum():.1f}%, per class "
            f"{100 * min(shares):.1f}-{100 * max(shares):.1f}%; strongest period {1 / peak:.1f} steps"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["ACSF1:2"])
