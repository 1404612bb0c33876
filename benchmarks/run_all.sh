#!/bin/sh
# Regenerate everything under benchmarks/ (about 45 min on a 2-core CPU; run it on an otherwise idle machine).
set -e
cd "$(dirname "$0")/.."
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
python -m rhel.reports.cli bench --model linear --gradient forward rhel rhel-one-sided bptt checkpointed-bptt \
    --lengths 1024 4096 8192 16384 49920 --no-beyond --repeats 3 --long-repeats 1 --long-from 16384 \
    --json benchmarks/bench-linear.json --plot benchmarks/bench-linear.png > benchmarks/bench-linear.txt
python -m rhel.reports.cli bench --model nonlinear --gradient forward rhel rhel-one-sided bptt checkpointed-bptt \
    --lengths 4096 8192 16384 49920 --no-beyond --repeats 3 --long-repeats 1 --long-from 16384 \
    --json benchmarks/bench-nonlinear.json --plot benchmarks/bench-nonlinear.png > benchmarks/bench-nonlinear.txt
# How long can a sequence be? One step at a million steps (BPTT's lengths that would not fit are skipped, with their
# extrapolated memory); about 15 min more.
python -m rhel.reports.cli bench --model linear --gradient forward rhel bptt checkpointed-bptt \
    --lengths 8192 49920 262144 1000000 --no-beyond --repeats 1 --long-repeats 1 --timeout 1800 \
    --json benchmarks/bench-million.json > benchmarks/bench-million.txt
python -m rhel.reports.cli gradcheck --model nonlinear --json benchmarks/gradcheck-nonlinear.json \
    --plot benchmarks/gradcheck-nonlinear.png --epsilon-sweep benchmarks/eps-sweep-nonlinear.png \
    > benchmarks/gradcheck-nonlinear.txt
python -m rhel.reports.cli gradcheck --model linear --json benchmarks/gradcheck-linear.json \
    --plot benchmarks/gradcheck-linear.png --epsilon-sweep benchmarks/eps-sweep-linear.png \
    > benchmarks/gradcheck-linear.txt
python benchmarks/unit_agreement.py > benchmarks/unit_agreement.md
