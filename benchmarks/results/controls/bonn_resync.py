"""Bonn EEG control: RHEL float32 with the re-synchronised echo (RHEL(resync_every=K)), 3 seeds (issue 14 point 5).
The method table's `rhel` row is replaced for this process only; everything else is `rhel train`."""
import os
import sys
from rhel.gradients import methods
from rhel.gradients.rhel import RHEL
# usage (repository root): PYTHONPATH=src python benchmarks/results/controls/bonn_resync.py 256
K = int(sys.argv[1])
row = methods.GRADIENT_METHODS["rhel"]
methods.GRADIENT_METHODS["rhel"] = methods.GradientMethod(
    row.name, row.label, lambda epsilon, relative: RHEL(epsilon=epsilon, relative=relative, resync_every=K), row.estimator)
from rhel.cli import main
sys.exit(main(["train", "--config", "datasets/bonn-eeg-linear", "--data-dir", os.environ.get("DATA_DIR", "../shared/data"), "--gradient", "rhel",
               "--seed", "0", "1", "2", "--out", f"benchmarks/results/controls/bonn-eeg-rhel-resync{K}",
               "--no-progress"]))
