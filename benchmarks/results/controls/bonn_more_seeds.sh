#!/bin/sh
# Bonn EEG control: five more seeds (3-7) of the study's config, one method per core (issue 14 point 5)
cd "$(dirname "$0")/../../.."
export PYTHONPATH=src XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1
M=$1; CPU=$2
LOG=benchmarks/results/controls/bonn-more-seeds-$M.log
# wait for the control that runs on this core to finish
while kill -0 "$3" 2>/dev/null; do sleep 20; done
echo "$(date '+%F %T') start bonn seeds 3-7 $M" >> $LOG
nice -n 10 taskset -c $CPU python -m rhel train --config datasets/bonn-eeg-linear --data-dir ${DATA_DIR:-../shared/data} \
  --gradient $M --seed 3 4 5 6 7 --out benchmarks/results/controls/bonn-eeg-seeds-3-7 --no-progress >> $LOG 2>&1
echo "$(date '+%F %T') done bonn seeds 3-7 $M (exit $?)" >> $LOG
