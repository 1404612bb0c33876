"""Validation-only tuning of a dataset config: train variants and print their best *validation* metric, never the
test metric (the test split is for the final row only; see RESULTS.md).

    python benchmarks/tune_validation.py datasets/acsf1-linear --seeds 0 1 \
        --variant base= --variant lr3e-3=optim.lr=3e-3 --variant len365=data.options.max_length=365

Each variant is `NAME=KEY=VALUE,KEY=VALUE` (the `rhel train --set` syntax, comma-separated; empty: the config as
shipped). Runs go to OUT/NAME (default /tmp/rhel-tune/<config>/NAME) with one gradient method (default bptt: the
same config serves both methods). Prints one line per variant: the mean and the values of the best validation
metric over seeds, the step it was reached at, and the wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def best_validation(run_dir: Path) -> tuple[float, int]:
    """The best validation metric of a run and its step, as early stopping kept them (the last record's
    ``best_val_<metric>`` and ``best_step``: higher or lower is better by the task)."""
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    key = next(k for k in last if k.startswith("best_val_"))
    return float(last[key]), int(last["best_step"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="a shipped config name, e.g. datasets/acsf1-linear")
    p.add_argument("--variant", action="append", required=True, help="NAME=KEY=VALUE,KEY=VALUE (empty: as shipped)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds per variant (default: 0 1)")
    p.add_argument("--gradient", default="bptt", help="gradient method (default: bptt)")
    p.add_argument("--data-dir", default=None, help="passed to rhel train --data-dir")
    p.add_argument("--out", type=Path, default=None, help="runs folder (default /tmp/rhel-tune/<config>)")
    args = p.parse_args(argv)
    out = args.out or Path("/tmp/rhel-tune") / args.config.replace("/", "_")
    for spec in args.variant:
        name, _, settings = spec.partition("=")
        sets = [s for s in settings.split(",") if s]
        run_out = out / name
        command = [sys.executable, "-m", "rhel", "train", "--config", args.config, "--gradient", args.gradient,
                   "--seed", *map(str, args.seeds), "--out", str(run_out), "--no-progress", "--resume"]  # fmt: skip
        if sets:
            command += ["--set", *sets]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        started = time.perf_counter()
        run_out.mkdir(parents=True, exist_ok=True)
        with open(run_out / "train.log", "w") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            print(f"{name}: rhel train failed (exit {done.returncode}); see {run_out / 'train.log'}", flush=True)
            continue
        best = [best_validation(d) for d in sorted(run_out.glob("*-seed*")) if (d / "metrics.jsonl").exists()]
        values = [v for v, _ in best]
        mean = sum(values) / len(values)
        print(
            f"{name:>12}: best val {mean:.4f}  values {' '.join(f'{v:.3f}@{s}' for v, s in best)}  "
            f"({time.perf_counter() - started:.0f} s)  {' '.join(sets) or '(as shipped)'}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
