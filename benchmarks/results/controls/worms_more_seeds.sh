#!/bin/sh
# Worms control: five more seeds (3-7) of the study's config, one method per core (issue 14 point 5)
cd "$(dirname "$0")/../../.."
export PYTHONPATH=src XLA_FLAGS=--xla_cpu_multi_thread_eigen=false OMP_NUM_THREADS=1
M=$1; CPU=$2
LOG=benchmarks/results/controls/worms-more-seeds-$M.log
echo "$(date '+%F %T') start worms seeds 3-7 $M" >> $LOG
nice -n 10 taskset -c $CPU python -m rhel train --config datasets/worms-linear --data-dir ${DATA_DIR:-../shared/data} \
  --gradient $M --seed 3 4 5 6 7 --out benchmarks/results/controls/worms-seeds-3-7 --no-progress >> $LOG 2>&1
echo "$(date '+%F %T') done worms seeds 3-7 $M (exit $?)" >> $LOG
