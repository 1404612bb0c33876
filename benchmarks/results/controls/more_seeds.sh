#!/bin/sh
# Seeds 3-7 of a study config with one gradient method on one core (issue 14 point 5: a row whose 3 seeds leave
# RHEL and BPTT, or a reference, apart). Runs go to benchmarks/results/controls/SHORT-seeds-3-7/.
#
#   sh benchmarks/results/controls/more_seeds.sh worms rhel 0 & sh benchmarks/results/controls/more_seeds.sh worms bptt 1
#
# Used for worms, bonn-eeg (8-seed figures in RESULTS.md's notes) and acsf1. Optional 4th argument: a pid to wait
# for first (a control already running on that core).
cd "$(dirname "$0")/../../.." || exit 1
export PYTHONPATH=src XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1
SHORT=$1; M=$2; CPU=$3
LOG=benchmarks/results/controls/$SHORT-more-seeds-$M.log
if [ -n "${4:-}" ]; then while kill -0 "$4" 2>/dev/null; do sleep 20; done; fi
echo "$(date '+%F %T') start $SHORT seeds 3-7 $M" >> "$LOG"
nice -n 10 taskset -c "$CPU" python -m rhel train --config "datasets/$SHORT-linear" --data-dir "${DATA_DIR:-../shared/data}" \
  --gradient "$M" --seed 3 4 5 6 7 --out "benchmarks/results/controls/$SHORT-seeds-3-7" --no-progress >> "$LOG" 2>&1
echo "$(date '+%F %T') done $SHORT seeds 3-7 $M (exit $?)" >> "$LOG"
