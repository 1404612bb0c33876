"""A/B timing of two source trees with the bench worker: does a code change pay, beyond this machine's noise?

    python benchmarks/ab_compare.py A_SRC B_SRC [--lengths 8192] [--models linear nonlinear] \
        [--methods forward rhel] [--rounds 3] [--repeats 3] [--json FILE]

``A_SRC`` and ``B_SRC`` are the ``src`` folders of two checkouts (e.g. ``git worktree add /tmp/a main`` and this
tree's ``src``). Every (round, model, tree, method) runs the bench worker in a fresh process as ``rhel bench`` does
(:func:`rhel.reports.bench.run_config`), importing that tree's ``rhel``; the trees alternate within each round, so
slow drifts of the machine hit both. Step times on this 2-core machine move by up to 30 % between runs
(``BENCHMARKS.md``), so the summary gives, per tree, the minimum over every timed step (the least disturbed estimate
of the code's own cost) and the median of the per-process medians, and each method's time as a multiple of the
forward pass's by both. Do not run it beside another heavy job.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from rhel.reports.bench import run_config
from rhel.reports.bench_worker import DEFAULT_CONFIG


def summarise(records: list[dict], trees: dict[str, str]) -> list[str]:
    lines = []
    keys = sorted({(r["length"], r["model"]) for r in records})
    methods = list(dict.fromkeys(r["method"] for r in records))
    for length, model in keys:
        lines.append(f"{model} L={length}")
        for name in trees:
            cells, base = [], None
            for method in methods:
                recs = [r for r in records if (r["length"], r["model"], r["tree"], r["method"]) ==
                        (length, model, name, method) and r["status"] == "ok"]  # fmt: skip
                if not recs:
                    cells.append(f"{method}: failed")
                    continue
                best = 1000 * min(t for r in recs for t in r["times_s"])
                med = 1000 * statistics.median(r["step_time_s"] for r in recs)
                if method == "forward":
                    base = (best, med)
                ratio = ""
                if base and method != "forward":
                    ratio = f" = {best / base[0]:.2f} / {med / base[1]:.2f} x forward"
                cells.append(f"{method} min {best:.0f} ms, median {med:.0f} ms{ratio}")
            lines.append(f"  {name}: " + "; ".join(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a_src", help="the first tree's src folder (named A)")
    p.add_argument("b_src", help="the second tree's src folder (named B)")
    p.add_argument("--lengths", type=int, nargs="+", default=[8192], help="sequence lengths (default: 8192)")
    p.add_argument("--models", nargs="+", default=["linear", "nonlinear"], help="bench models (default: both)")
    p.add_argument("--methods", nargs="+", default=["forward", "rhel"], help="worker methods (default: forward rhel)")
    p.add_argument("--rounds", type=int, default=3, help="rounds over every configuration (default: 3)")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per process (default: 3)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per process (default: 600)")
    p.add_argument("--json", metavar="FILE", help="write every record to FILE (default: none)")
    args = p.parse_args(argv)
    trees = {"A": str(Path(args.a_src).resolve()), "B": str(Path(args.b_src).resolve())}
    for name, src in trees.items():
        if not (Path(src) / "rhel" / "__init__.py").is_file():
            p.error(f"tree {name}: {src} is not a src folder holding the rhel package (give a checkout's src)")
    print(f"A = {trees['A']}\nB = {trees['B']}", flush=True)
    records = []
    for rnd in range(1, args.rounds + 1):
        for length in args.lengths:
            for model in args.models:
                for name, src in trees.items():
                    for method in args.methods:
                        config = {**DEFAULT_CONFIG, "model": model}
                        rec = run_config(method, length, config, repeats=args.repeats, timeout_s=args.timeout, src=src)
                        rec.update(round=rnd, tree=name, model=model, method=method, length=length)
                        records.append(rec)
                        times = [round(1000 * t) for t in rec.get("times_s", [])]
                        print(f"round {rnd} {model} L={length} {name} {method}: {rec['status']} {times} ms", flush=True)
    print("\n".join(summarise(records, trees)))
    if args.json:
        Path(args.json).write_text(json.dumps({"trees": trees, "records": records}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
