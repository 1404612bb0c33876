"""``rhel gradcheck`` and ``rhel bench``: the parsers, and commands that call the reports' functions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from rhel.gradients.methods import ESTIMATOR_METHODS, METHOD_NAMES
from rhel.reports.bench import DEFAULT_CONFIG, DEFAULT_LENGTHS, DEFAULT_METHODS
from rhel.reports.gradcheck import PRECISIONS
from rhel.training.config import UNITS, ConfigError, TrainConfig, configure


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gradcheck`` and ``bench`` sub-commands."""

    g = subparsers.add_parser(
        "gradcheck",
        help="compare RHEL's gradients with BPTT's per block and parameter, in float32 and float64",
        description=(
            "Compare RHEL (every estimator) with BPTT on one batch: cosine similarity, norm ratio and relative error "
            "per block and per parameter, in float32 and float64. Model, config and dataset are chosen as in "
            "`rhel train` (default: the embedded default task and model)."
        ),
    )
    g.add_argument("--config", metavar="NAME|FILE", help="a shipped config name or a .toml/.json file (as rhel train)")
    g.add_argument("--model", choices=UNITS, help="HRU type of every block")
    g.add_argument("--dataset", metavar="NAME|PATH", help="a registered dataset name or a path")
    g.add_argument("--data-dir", metavar="DIR")
    g.add_argument("--length", type=int, help="sequence length (synthetic datasets only; passed to rhel.data.load)")
    g.add_argument("--seed", type=int, nargs=1, help="model / data seed (default: the config's first seed)")
    g.add_argument("--batch-size", type=int, default=4, help="examples in the batch (default 4)")
    g.add_argument("--epsilon", type=float, help="RHEL nudging strength (default: the core's default per precision)")
    g.add_argument("--estimator", nargs="+", choices=tuple(ESTIMATOR_METHODS), default=list(ESTIMATOR_METHODS))
    g.add_argument("--resync-every", type=int, metavar="K",
                   help="re-synchronise RHEL's echo every K steps (central and Richardson; see rhel.RHEL)")  # fmt: skip
    g.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    g.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="write the report as JSON to FILE ('-' or no FILE: stdout, instead of the table)")  # fmt: skip
    g.add_argument("--plot", metavar="FILE.png", help="bar chart of cosine and norm ratio per parameter and block")
    g.add_argument("--eps-sweep", metavar="FILE.png", help="plot the relative error against eps (log-log)")
    g.add_argument("--eps-values", type=float, nargs="+", metavar="EPS", help="eps grid of the sweep (default 1e-8..1)")
    g.set_defaults(func=gradcheck_command)

    b = subparsers.add_parser(
        "bench",
        help="time per training step and peak memory per gradient method and sequence length",
        description=(
            "Benchmark a training step (loss gradient w.r.t. all parameters + Adam update; compile excluded, median "
            "of repeats) and its peak memory for each gradient method and sequence length, each configuration in a "
            "fresh process. Out-of-memory and time-outs are reported in the table. Default configuration: "
            + ", ".join(f"{k} {v}" for k, v in DEFAULT_CONFIG.items())
        ),
    )
    b.add_argument("--model", choices=UNITS, default=DEFAULT_CONFIG["model"])
    b.add_argument("--num-blocks", type=int, default=DEFAULT_CONFIG["num_blocks"])
    b.add_argument("--hidden", type=int, default=DEFAULT_CONFIG["hidden"])
    b.add_argument("--state-size", type=int, default=DEFAULT_CONFIG["state_size"])
    b.add_argument("--batch-size", type=int, default=DEFAULT_CONFIG["batch_size"])
    b.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=list(DEFAULT_METHODS))
    b.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS))
    b.add_argument(
        "--no-beyond", action="store_true", help="stop after --lengths (default: double until a method fails)"
    )
    b.add_argument("--repeats", type=int, default=3, help="timed steps per configuration (median; default 3)")
    b.add_argument("--long-repeats", type=int, default=1, help="timed steps at lengths >= --long-from (default 1)")
    b.add_argument("--long-from", type=int, default=16384)
    b.add_argument("--timeout", type=float, default=600.0, help="seconds per configuration (default 600)")
    b.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds from the start after which no length beyond --lengths is started",
    )
    b.add_argument("--mem-limit-mb", type=float, default=None,
                   help="kill a worker above this resident memory (default: 75%% of available memory)")  # fmt: skip
    b.add_argument("--json", metavar="FILE", nargs="?", const="-", help="write the report as JSON (no FILE: stdout)")
    b.add_argument("--plot", metavar="FILE.png", help="time and memory against length per method")
    b.set_defaults(func=bench_command)


def resolve_gradcheck_config(args: argparse.Namespace) -> TrainConfig:
    """The training config exactly as ``rhel train`` resolves it from the same options, plus ``--length``."""
    config = configure(args.config, dataset=args.dataset, data_dir=args.data_dir, unit=args.model, seeds=args.seed)
    if args.length is not None:
        options = {**config.data.options, "length": args.length}
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, options=options))
    return config


def gradcheck_command(args: argparse.Namespace) -> int:
    """``rhel gradcheck``: run the comparison, print the table (or the JSON), write the plots asked for."""
    from rhel.reports import plots
    from rhel.reports.gradcheck import DEFAULT_SWEEP, enable_x64, format_table, make_problem, run_gradcheck

    enable_x64()
    try:
        config = resolve_gradcheck_config(args)
    except ConfigError as error:
        print(f"rhel gradcheck: {error}", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print("rhel gradcheck: --batch-size must be >= 1", file=sys.stderr)
        return 2
    if args.resync_every is not None and args.resync_every < 1:
        print("rhel gradcheck: --resync-every must be >= 1 (or omitted)", file=sys.stderr)
        return 2
    problem = make_problem(config, batch_size=args.batch_size)
    sweep = (args.eps_values or list(DEFAULT_SWEEP)) if args.eps_sweep else None
    print(f"rhel gradcheck: {config.model.unit} HSSM ({config.model.num_blocks} blocks, hidden {config.model.hidden}, "
          f"state {config.model.state_size}) on {config.data.name}, batch {problem.inputs.shape[0]} x length "
          f"{problem.inputs.shape[1]}", file=sys.stderr)  # fmt: skip
    report = run_gradcheck(problem, precisions=args.precision, estimators=args.estimator, epsilon=args.epsilon,
                           sweep=sweep, resync_every=args.resync_every)  # fmt: skip
    _emit(report, args.json, format_table)
    _plot(plots.plot_alignment, report, args.plot)
    _plot(plots.plot_eps_sweep, report, args.eps_sweep)
    return 0


def _emit(report: dict[str, Any], json_path: str | None, format_text) -> None:
    """Print the report as JSON (``json_path`` ``"-"``) or as text (``format_text(report)``), and write the JSON to
    ``json_path`` when it is a file."""
    text = json.dumps(report, indent=1)
    if json_path == "-":
        print(text)
        return
    print(format_text(report), end="")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text + "\n")
        print(f"wrote {json_path}", file=sys.stderr)


def _plot(plot, report: dict[str, Any], path: str | None) -> None:
    if path:
        plot(report, path)
        print(f"wrote {path}", file=sys.stderr)


def bench_command(args: argparse.Namespace) -> int:
    """``rhel bench``: run every method at every length (fresh processes), print the table, write what is asked."""
    from rhel.reports import plots
    from rhel.reports.bench import run_bench
    from rhel.reports.bench_tables import format_bench

    config = {"model": args.model, "num_blocks": args.num_blocks, "hidden": args.hidden,
              "state_size": args.state_size, "batch_size": args.batch_size}  # fmt: skip
    if min(config["num_blocks"], config["hidden"], config["state_size"], config["batch_size"], *args.lengths) < 1:
        print("rhel bench: sizes and lengths must be positive", file=sys.stderr)
        return 2
    beyond = "" if args.no_beyond else " and beyond"
    print(f"rhel bench: {config}, methods {args.methods}, lengths {args.lengths}{beyond}; one fresh process per "
          "configuration", file=sys.stderr)  # fmt: skip
    report = run_bench(
        config, methods=args.methods, lengths=sorted(set(args.lengths)), beyond=not args.no_beyond,
        repeats=args.repeats, long_repeats=args.long_repeats, long_from=args.long_from, timeout_s=args.timeout,
        budget_s=args.budget, mem_limit_mb=args.mem_limit_mb, log=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    _emit(report, args.json, format_bench)
    _plot(plots.plot_bench, report, args.plot)
    return 0


def main(argv=None) -> int:
    """Run ``gradcheck`` / ``bench`` without the other sub-commands (``python -m rhel.reports.cli bench ...``)."""
    parser = argparse.ArgumentParser(prog="rhel")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
