#!/bin/sh
# Bonn EEG control: float32 RHEL with the re-synchronised echo, 3 seeds (issue 14 point 5). Run from anywhere.
# The runs in bonn-eeg-rhel-resync256/ were made with RHEL(resync_every=256) swapped into the method table before
# the config had the option (their folders carry the plain config's name); the option is the same thing:
cd "$(dirname "$0")/../../.."
PYTHONPATH=src python -m rhel train --config datasets/bonn-eeg-linear --data-dir "${DATA_DIR:-../shared/data}" \
  --gradient rhel --set gradient.resync_every=256 --seed 0 1 2 --out benchmarks/results/controls/bonn-eeg-rhel-resync256
