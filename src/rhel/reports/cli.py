"""``rhel gradcheck`` and ``rhel bench``: the parsers, and commands that call the reports' functions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

from rhel.gradients.methods import ESTIMATOR_METHODS, GRADIENT_METHODS
from rhel.reports.bench import DEFAULT_CONFIG, DEFAULT_LENGTHS, DEFAULT_METHODS, FORWARD
from rhel.reports.gradcheck import PRECISIONS
from rhel.training.cli_options import RHEL_METHODS, add_gradient_option, deprecated_alias
from rhel.training.config import DEFAULT_CONFIG as TRAIN_DEFAULT_CONFIG
from rhel.training.config import UNITS, ConfigError, TrainConfig, apply_settings, configure

#: Method name -> RHEL estimator name (``"rhel-one-sided"`` -> ``"one_sided"``).
_METHOD_ESTIMATORS = {name: estimator for estimator, name in ESTIMATOR_METHODS.items()}


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
    g.add_argument(
        "--config", metavar="NAME|FILE", help="a shipped config name or a .toml/.json file, as rhel train (default: "
        f"{TRAIN_DEFAULT_CONFIG})"
    )  # fmt: skip
    g.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="set any config field, as rhel train --set (default: none)")  # fmt: skip
    g.add_argument("--model", choices=UNITS, help="HRU type of every block (default: the config's)")
    g.add_argument("--dataset", metavar="NAME|PATH", help="a registered dataset name or a path (default: the config's)")
    g.add_argument("--data-dir", metavar="DIR", help="where datasets are cached / found (default: $RHEL_DATA_DIR)")
    g.add_argument(
        "--length", type=int, help="sequence length, synthetic datasets only; passed to rhel.data.load (default: the "
        "config's)"
    )  # fmt: skip
    g.add_argument("--seed", type=int, nargs="+", metavar="SEED",
                   help="model / data seed(s), one report each (default: the config's first seed)")  # fmt: skip
    g.add_argument("--batch-size", type=int, default=4, help="examples in the batch (default: %(default)s)")
    g.add_argument("--epsilon", type=float, help="RHEL nudging strength, in the config's convention "
                   "(gradient.relative_epsilon) (default: the config's gradient.epsilon, else the core's default per "
                   "precision)")  # fmt: skip
    add_gradient_option(g, RHEL_METHODS, default=RHEL_METHODS, what="RHEL method(s) compared with BPTT")
    deprecated_alias(g, "--estimator", "--gradient", type=lambda e: ESTIMATOR_METHODS.get(e, e))
    g.add_argument("--resync-every", type=int, metavar="K",
                   help="re-synchronise RHEL's echo every K steps (central and Richardson; see rhel.RHEL) "
                   "(default: the config's gradient.resync_every, else none)")  # fmt: skip
    g.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                   help=f"precision(s) to compare in (default: {' '.join(PRECISIONS)})")  # fmt: skip
    g.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="write the report as JSON to FILE ('-' or no FILE: stdout, instead of the table) (default: "
                   "none)")  # fmt: skip
    g.add_argument("--plot", metavar="FILE.png",
                   help="bar chart of cosine and norm ratio per parameter and block (default: none)")  # fmt: skip
    g.add_argument("--epsilon-sweep", metavar="FILE.png",
                   help="plot the relative error against epsilon, log-log (default: none)")  # fmt: skip
    g.add_argument("--epsilon-values", type=float, nargs="+", metavar="EPSILON",
                   help="epsilon grid of the sweep (default: 1e-8 .. 1)")  # fmt: skip
    deprecated_alias(g, "--eps-sweep", "--epsilon-sweep")
    deprecated_alias(g, "--eps-values", "--epsilon-values")
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
    b.add_argument("--model", choices=UNITS, default=DEFAULT_CONFIG["model"],
                   help="HRU type of every block (default: %(default)s)")  # fmt: skip
    b.add_argument("--num-blocks", type=int, default=DEFAULT_CONFIG["num_blocks"],
                   help="HSSM blocks (default: %(default)s)")  # fmt: skip
    b.add_argument("--hidden", type=int, default=DEFAULT_CONFIG["hidden"],
                   help="hidden width of the blocks (default: %(default)s)")  # fmt: skip
    b.add_argument("--state-size", type=int, default=DEFAULT_CONFIG["state_size"],
                   help="HRU state size (default: %(default)s)")  # fmt: skip
    b.add_argument("--batch-size", type=int, default=DEFAULT_CONFIG["batch_size"],
                   help="examples per training step (default: %(default)s)")  # fmt: skip
    add_gradient_option(b, default=DEFAULT_METHODS, what="gradient method(s) to time", references=(FORWARD,))
    deprecated_alias(b, "--methods", "--gradient")
    b.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS), metavar="LENGTH",
                   help=f"sequence lengths (default: {' '.join(map(str, DEFAULT_LENGTHS))})")  # fmt: skip
    b.add_argument(
        "--no-beyond", action="store_true", help="stop after --lengths (default: double until a method fails)"
    )
    b.add_argument("--repeats", type=int, default=3, help="timed steps per configuration, median (default: 3)")
    b.add_argument("--long-repeats", type=int, default=1, help="timed steps at lengths >= --long-from (default: 1)")
    b.add_argument("--long-from", type=int, default=16384, metavar="LENGTH",
                   help="length from which --long-repeats applies (default: %(default)s)")  # fmt: skip
    b.add_argument("--rounds", type=int, default=1,
                   help="measure every length this many times, the methods in turn within each round (each run a "
                   "fresh process), and report the median over the rounds of each method's step time and memory "
                   "(default: 1)")  # fmt: skip
    b.add_argument("--timeout", type=float, default=600.0, help="seconds per configuration (default: 600)")
    b.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds from the start after which no length beyond --lengths is started (default: no limit)",
    )
    b.add_argument("--mem-limit-mb", type=float, default=None,
                   help="kill a worker above this resident memory (default: 75%% of available memory)")  # fmt: skip
    b.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="write the report as JSON (no FILE: stdout) (default: none)")  # fmt: skip
    b.add_argument("--plot", metavar="FILE.png", help="time and memory against length per method (default: none)")
    b.add_argument("--step", type=float, metavar="DELTA",
                   help="the nonlinear HRU's leapfrog step (model.step; default: the unit's, 0.1)")  # fmt: skip
    b.add_argument("--resync-every", type=int, metavar="K",
                   help="run rhel and rhel-richardson with the re-synchronised echo, every K steps (rhel.RHEL"
                   "(resync_every=K)); the other methods as they are (default: the plain echo)")  # fmt: skip
    b.add_argument("--devices", type=int, metavar="N",
                   help="data-parallel scaling instead: sequences/s on 1..N devices at --batch-size per device, at "
                   "the smallest of --lengths (on CPU with N forced host devices; docs/distributed.md) "
                   "(default: none)")  # fmt: skip
    b.set_defaults(func=bench_command)


def _require(ok: bool, flag: str, rule: str, value: Any) -> None:
    """Raise a one-line ``ValueError`` naming the flag when ``ok`` is false (``rhel`` reports it, exit status 2)."""
    if not ok:
        raise ValueError(f"{flag} must be {rule}, got {value}")


def _check_gradcheck_args(args: argparse.Namespace) -> None:
    _require(args.length is None or args.length >= 1, "--length", "a positive integer", args.length)
    _require(args.batch_size >= 1, "--batch-size", "a positive integer", args.batch_size)
    _require(args.epsilon is None or 0 < args.epsilon < math.inf, "--epsilon", "positive and finite", args.epsilon)
    _require(args.resync_every is None or args.resync_every >= 1, "--resync-every", "a positive integer",
             args.resync_every)  # fmt: skip
    bad = [e for e in args.epsilon_values or () if not 0 < e < math.inf]
    _require(not bad, "--epsilon-values", "positive and finite", ", ".join(map(str, bad)))


def resolve_gradcheck_config(args: argparse.Namespace) -> TrainConfig:
    """The training config exactly as ``rhel train`` resolves it from the same options, plus ``--length``."""
    config = configure(args.config, dataset=args.dataset, data_dir=args.data_dir, unit=args.model, seeds=args.seed)
    config = apply_settings(config, getattr(args, "set", None) or ())
    if args.length is not None:
        options = {**config.data.options, "length": args.length}
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, options=options))
    return config


def gradcheck_command(args: argparse.Namespace) -> int:
    """``rhel gradcheck``: run the comparison, print the table (or the JSON), write the plots asked for."""
    from rhel.reports import plots
    from rhel.reports.gradcheck import DEFAULT_SWEEP, enable_x64, format_table, make_problem, run_gradcheck

    _check_gradcheck_args(args)
    enable_x64()
    try:
        config = resolve_gradcheck_config(args)
    except ConfigError as error:
        print(f"rhel gradcheck: {error}", file=sys.stderr)
        return 2
    sweep = (args.epsilon_values or list(DEFAULT_SWEEP)) if args.epsilon_sweep else None
    estimators = [_METHOD_ESTIMATORS[name] for name in dict.fromkeys(args.gradient)]
    seeds = list(dict.fromkeys(args.seed)) if args.seed else [config.seeds[0]]
    reports = []
    for seed in seeds:
        problem = make_problem(config, batch_size=args.batch_size, seed=seed)
        print(f"rhel gradcheck: {config.model.unit} HSSM ({config.model.num_blocks} blocks, hidden "
              f"{config.model.hidden}, state {config.model.state_size}) on {config.data.name}, batch "
              f"{problem.inputs.shape[0]} x length {problem.inputs.shape[1]}, seed {seed}",
              file=sys.stderr)  # fmt: skip
        report = run_gradcheck(problem, precisions=args.precision, estimators=estimators, epsilon=args.epsilon,
                               sweep=sweep, resync_every=args.resync_every)  # fmt: skip
        reports.append(report)
        suffix = f"-seed{seed}" if len(seeds) > 1 else ""
        if args.json != "-":
            print(format_table(report), end="")
        _plot(plots.plot_alignment, report, _with_suffix(args.plot, suffix))
        _plot(plots.plot_eps_sweep, report, _with_suffix(args.epsilon_sweep, suffix))
    if args.json:
        _emit(reports[0] if len(reports) == 1 else reports, args.json, None)
    return 0


def _with_suffix(path: str | None, suffix: str) -> str | None:
    """``path`` with ``suffix`` before its extension (``a.png``, ``-seed3`` -> ``a-seed3.png``)."""
    if path is None or not suffix:
        return path
    return str(Path(path).with_stem(Path(path).stem + suffix))


def _emit(report: dict[str, Any] | list, json_path: str | None, format_text) -> None:
    """Print the report as JSON (``json_path`` ``"-"``) or as text (``format_text(report)``; ``None``: the text
    is printed already), and write the JSON to ``json_path`` when it is a file."""
    text = json.dumps(report, indent=1)
    if json_path == "-":
        print(text)
        return
    if format_text is not None:
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
    _require(args.repeats >= 1, "--repeats", "a positive integer", args.repeats)
    _require(args.long_repeats >= 1, "--long-repeats", "a positive integer", args.long_repeats)
    _require(args.timeout > 0, "--timeout", "positive (seconds)", args.timeout)
    _require(args.rounds >= 1, "--rounds", "a positive integer", args.rounds)
    if args.step is not None:
        _require(args.step > 0 and args.model == "nonlinear", "--step", "positive, with --model nonlinear",
                 f"{args.step} (--model {args.model})")  # fmt: skip
        config["step"] = args.step
    if args.resync_every is not None:
        _require(args.resync_every >= 1, "--resync-every", "a positive integer", args.resync_every)
        symmetric = any(GRADIENT_METHODS[m].symmetric for m in args.gradient if m in GRADIENT_METHODS)
        _require(symmetric, "--resync-every", "used with rhel or rhel-richardson in --gradient", args.gradient)
        config["resync_every"] = args.resync_every
    if args.devices is not None:
        return _scaling_command(args, config)
    beyond = "" if args.no_beyond else " and beyond"
    print(f"rhel bench: {config}, methods {args.gradient}, lengths {args.lengths}{beyond}; one fresh process per "
          "configuration", file=sys.stderr)  # fmt: skip
    report = run_bench(
        config, methods=args.gradient, lengths=sorted(set(args.lengths)), beyond=not args.no_beyond,
        repeats=args.repeats, long_repeats=args.long_repeats, long_from=args.long_from, timeout_s=args.timeout,
        budget_s=args.budget, mem_limit_mb=args.mem_limit_mb, rounds=args.rounds,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    _emit(report, args.json, format_bench)
    _plot(plots.plot_bench, report, args.plot)
    return 0


def _scaling_command(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """``rhel bench --devices N``: throughput on 1..N devices (:mod:`rhel.reports.bench_scaling`)."""
    from rhel.reports.bench_scaling import format_scaling, run_scaling

    if args.devices < 1:
        print(f"rhel bench: --devices {args.devices}: must be at least 1", file=sys.stderr)
        return 2
    length = min(args.lengths)
    print(f"rhel bench: data-parallel scaling on 1..{args.devices} device(s), {config}, methods {args.gradient}, "
          f"length {length}; one fresh process", file=sys.stderr)  # fmt: skip
    try:
        report = run_scaling(config, devices=args.devices, methods=args.gradient, length=length,
                             repeats=args.repeats, timeout_s=args.timeout)  # fmt: skip
    except ValueError as error:
        print(f"rhel bench: {error}", file=sys.stderr)
        return 2
    _emit(report, args.json, format_scaling)
    return 0


def main(argv=None) -> int:
    """Run ``gradcheck`` / ``bench`` without the other sub-commands (``python -m rhel.reports.cli bench ...``)."""
    parser = argparse.ArgumentParser(prog="rhel")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
