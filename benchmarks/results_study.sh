#!/bin/sh
# The real-data results study (RESULTS.md): every dataset config trained with RHEL and with BPTT, 3 seeds each.
#
#   benchmarks/results_study.sh                 # the whole study, smallest datasets first (a few hours on one core)
#   benchmarks/results_study.sh delhi-eeg       # one row (the linear config datasets/delhi-eeg-linear)
#   benchmarks/results_study.sh worms-nonlinear # a config by its full name
#
# Each config NAME runs as `rhel train --config datasets/NAME` into benchmarks/results/NAME/, one seed at a time
# (both methods per seed, so a partial row always pairs RHEL with BPTT). It is resumable: runs whose final.json
# exists are kept, interrupted runs continue from their checkpoint. After changing a config, delete its folder.
# RESULTS.md is rebuilt (benchmarks/results_table.py) after every seed.
#
# Environment: DATA_DIR (default ../shared/data, then ~/.cache/rhel), STUDY_CPU (the one core to use, default 1;
# empty: no pinning), PYTHON (default python). The study uses one core and runs one training at a time.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python}
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
export XLA_FLAGS="${XLA_FLAGS:---xla_cpu_multi_thread_eigen=false}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
DATA_DIR=${DATA_DIR:-}
if [ -z "$DATA_DIR" ] && [ -d ../shared/data ]; then DATA_DIR=$(cd ../shared/data && pwd); fi
RESULTS=benchmarks/results
LOG=$RESULTS/study.log
mkdir -p "$RESULTS"

# smallest / fastest first
STUDY="delhi-eeg handmovementdirection worms rock acsf1 pigairwaypressure pigartpressure pigcvp eoghorizontalsignal
bonn-eeg fsdd smnist psmnist"

PIN=""
STUDY_CPU=${STUDY_CPU-1}
if [ -n "$STUDY_CPU" ] && command -v taskset >/dev/null 2>&1; then PIN="taskset -c $STUDY_CPU"; fi

log() { echo "$(date '+%F %T') $*" | tee -a "$LOG"; }

[ $# -gt 0 ] || set -- $STUDY
for arg in "$@"; do
    case $arg in
        *-linear | *-nonlinear) name=$arg ;;
        *) name=$arg-linear ;;
    esac
    if [ ! -f "src/rhel/configs/datasets/$name.toml" ]; then
        log "no config src/rhel/configs/datasets/$name.toml; known: $(ls src/rhel/configs/datasets | sed 's/\.toml$//' | tr '\n' ' ')"
        exit 2
    fi
    seeds=$($PYTHON -c "from rhel.training.config import load_config; print(*load_config('datasets/$name').seeds)")
    for seed in $seeds; do
        log "start $name seed $seed"
        # shellcheck disable=SC2086
        nice -n 10 $PIN $PYTHON -m rhel train --config "datasets/$name" ${DATA_DIR:+--data-dir "$DATA_DIR"} \
            --seed "$seed" --out "$RESULTS/$name" --resume --no-progress >>"$LOG" 2>&1
        log "done  $name seed $seed (exit $?)"
        $PYTHON benchmarks/results_table.py >>"$LOG" 2>&1 || log "results_table.py failed"
    done
done
log "study finished: $*"
