#!/bin/sh
# Bonn EEG control: the linear config trained in float64 with one method, 3 seeds (issue 14, point 5)
cd "$(dirname "$0")/../../.."
export PYTHONPATH=src XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1
M=$1; CPU=$2
LOG=benchmarks/results/controls/bonn-float64.log
echo "$(date '+%F %T') start bonn float64 $M" >> $LOG
nice -n 10 taskset -c $CPU python -m rhel train --config datasets/bonn-eeg-linear --data-dir ${DATA_DIR:-../shared/data} \
  --gradient $M --float64 --seed 0 1 2 --out benchmarks/results/controls/bonn-eeg-float64-$M --no-progress >> $LOG 2>&1
echo "$(date '+%F %T') done bonn float64 $M (exit $?)" >> $LOG
