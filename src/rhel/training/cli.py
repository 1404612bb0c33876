"""``rhel train`` and ``rhel results``.

``rhel train`` with no arguments runs the shipped ``default`` config: the synthetic long-range task generated in
process, trained with RHEL and with BPTT, and prints both test metrics side by side.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rhel.gradients.methods import method_label
from rhel.training.cli_options import add_gradient_option
from rhel.training.config import (
    DEFAULT_CONFIG,
    UNITS,
    ConfigError,
    TrainConfig,
    apply_settings,
    configure,
    describe_configs,
    dumps_toml,
    expand,
)
from rhel.training.distributed import DistributedError, run_seed_groups
from rhel.training.distributed_cli import add_distributed_arguments, start_processes
from rhel.training.logs import LOGGERS


def register(subparsers) -> None:
    """Add the ``train`` and ``results`` sub-commands."""
    p = subparsers.add_parser(
        "train",
        help="train an HSSM with RHEL or BPTT (no arguments: the embedded default task, RHEL vs BPTT)",
        description=(
            "Train Hamiltonian state-space models. Settings come from a config (--config, default: the shipped "
            f"'{DEFAULT_CONFIG}') and are overridden by the options below. Every seed x gradient method is one run, "
            "written to OUT/<dataset>-<model>-<method>-seed<seed>-<settings digest>/ (the digest tells runs that "
            "differ in any other setting apart; the full config is saved beside it)."
        ),
    )
    p.add_argument(
        "--config",
        metavar="NAME|FILE",
        help=f"a shipped config name (see --list-configs) or a .toml/.json file (default: {DEFAULT_CONFIG})",
    )
    p.add_argument(
        "--list-configs", action="store_true", help="list the shipped configs (description, dataset, length, steps)"
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    p.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="set any config field, typed and validated as in the file, after the other options: "
        "model.hidden=128 optim.lr=3e-4 data.options.length=1024 gradient.methods=rhel,bptt (default: none)",
    )
    p.add_argument("--model", choices=UNITS, help="HRU type of every block (default: the config's)")
    p.add_argument(
        "--dataset",
        metavar="NAME|PATH",
        help="a registered dataset name or a path, see `rhel data list` (default: the config's)",
    )
    p.add_argument("--data-dir", metavar="DIR", help="where datasets are cached / found (default: $RHEL_DATA_DIR)")
    add_gradient_option(p, what="one or more gradient methods, one run each")
    p.add_argument(
        "--epsilon", type=float, help="RHEL nudging strength (default: the config's, else the core's default)"
    )
    p.add_argument(
        "--loss-scale",
        type=float,
        help="multiply the loss by S and divide the gradients by S; the RHEL nudge is relative to the "
        "incoming gradient, so S does not change the effective epsilon (default: the config's, 1)",
    )
    p.add_argument(
        "--seed", nargs="+", type=int, metavar="SEED", help="one or more seeds, one run each (default: the config's)"
    )
    p.add_argument("--float64", action="store_true", default=None, help="train in double precision")
    p.add_argument("--steps", type=int, help="number of optimiser steps (default: the config's)")
    p.add_argument(
        "--eval-every", type=int, metavar="N", help="evaluate on the validation split every N steps (default: the "
        "config's)"
    )  # fmt: skip
    p.add_argument(
        "--patience", type=int, help="evaluations without improvement before stopping, 0: never (default: the config's)"
    )
    p.add_argument("--batch-size", type=int, help="training batch size (default: the config's)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: the config's)")
    p.add_argument("--out", metavar="DIR", help="output directory (default: runs/<config name>)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the runs in OUT from their checkpoints; finished runs are kept as they are",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar: one log line per evaluation instead (also when stderr is not a terminal)",
    )
    p.add_argument(
        "--log",
        nargs="+",
        action="extend",
        choices=LOGGERS,
        default=[],
        metavar="WHERE",
        help="also log each evaluation to: tensorboard (RUN_DIR/tensorboard; pip install rhel[tensorboard]) "
        "(default: none)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace finished runs in OUT (without it they are refused)"
    )
    add_distributed_arguments(p)
    p.set_defaults(func=train_command)

    r = subparsers.add_parser(
        "results",
        help="tabulate finished runs (mean ± std over seeds) and plot their training curves",
        description="Collect the runs under DIR... into results.md / results.csv and curves-<dataset>.png.",
    )
    r.add_argument("dirs", nargs="+", metavar="DIR", help="run directories or folders holding them")
    r.add_argument("--out", metavar="DIR", help="where to write the table and plots (default: the first DIR)")
    r.add_argument("--ddof", type=int, default=0, help="delta degrees of freedom of the std (default: 0, as the paper)")
    r.add_argument("--no-plots", action="store_true", help="skip the PNG curves")
    r.set_defaults(func=results_command)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The config named by ``--config`` (or the default) with the command-line overrides and ``--set`` applied,
    validated."""
    config = configure(
        args.config,
        dataset=args.dataset,
        data_dir=args.data_dir,
        unit=args.model,
        methods=args.gradient,
        epsilon=args.epsilon,
        loss_scale=args.loss_scale,
        seeds=args.seed,
        float64=bool(args.float64),
        steps=args.steps,
        eval_every=args.eval_every,
        patience=args.patience,
        batch_size=args.batch_size,
        lr=args.lr,
    )
    return apply_settings(config, getattr(args, "set", None) or ())


def format_config_list() -> str:
    """The ``--list-configs`` table: name, dataset, sequence length, steps, seeds and the one-line description."""
    rows = [("name", "dataset", "length", "steps", "seeds", "description")]
    for c in describe_configs():
        rows.append((c.name, c.dataset, "-" if c.length is None else f"{c.length:,}", f"{c.steps:,}", str(c.seeds),
                     c.description))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        numbers = (x.rjust(w) for x, w in zip(row[2:5], widths[2:], strict=True))
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), *numbers]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)


def train_command(args: argparse.Namespace) -> int:
    if args.list_configs:
        print(format_config_list())
        return 0
    from rhel.training.logs import require_tensorboard

    try:  # settings that cannot work: one line, exit status 2
        config = resolve_config(args)
        if args.print_config:
            print(dumps_toml(config), end="")
            return 0
        if args.log:
            require_tensorboard()
        writer = start_processes(args)
    except (ConfigError, ImportError, DistributedError) as error:
        print(f"rhel train: {error}", file=sys.stderr)
        return 2
    if config.float64:
        import jax

        jax.config.update("jax_enable_x64", True)
    import equinox as eqx

    from rhel.training.experiment import load_dataset
    from rhel.training.faults import record_failure, refuse_finished
    from rhel.training.logs import make_loggers
    from rhel.training.loop import NonFiniteError, train_run
    from rhel.training.results import write_results
    from rhel.training.runs import run_dir_for

    out = Path(args.out) if args.out else Path("runs") / config.name.replace("/", "-")
    runs = expand(config)
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if writer else (lambda line: None)
    for single in runs:  # before any training: a finished run is never replaced silently
        refuse_finished(run_dir_for(out, single), resume=args.resume, overwrite=args.overwrite)
    log(
        f"rhel train: config {config.name!r}, dataset {config.data.name!r}, {config.model.unit} HSSM, "
        f"gradient {', '.join(config.gradient.methods)}, seed(s) {', '.join(map(str, config.seeds))} -> {out}"
    )
    datasets: dict[int, object] = {}
    failures = 0
    started = time.perf_counter()

    def run_one(single: TrainConfig, devices) -> None:
        nonlocal failures
        run_dir = run_dir_for(out, single)
        if args.resume and (run_dir / "final.json").is_file():
            log(f"  {run_dir.name}: already finished, kept")
            return
        seed = single.seeds[0]
        try:
            if seed not in datasets:
                datasets[seed] = load_dataset(single, seed)
            loggers = make_loggers(args.log, run_dir) if writer else []
            try:
                result = train_run(
                    single, run_dir, dataset=datasets[seed], resume=args.resume, overwrite=args.overwrite,
                    progress=not args.no_progress and writer and not args.parallel_seeds, devices=devices,
                    callbacks=loggers,
                )  # fmt: skip
            finally:
                for logger in loggers:
                    logger.close()
        except DistributedError:
            raise
        except (NonFiniteError, eqx.EquinoxRuntimeError, FileNotFoundError, KeyError, ValueError) as error:
            failures += 1
            if writer:  # process 0 alone records and reports (the others print nothing)
                log(f"  {run_dir.name}: FAILED: {record_failure(run_dir, single, error)}")
            return
        log(
            f"  {run_dir.name}: test {result.metric} {result.test_metric:.4f} at the best validation step "
            f"{result.best_step} ({result.status} at step {result.step}, {result.wall_s:.1f} s)"
        )

    try:
        run_seed_groups(runs, run_one, devices=args.devices, parallel_seeds=args.parallel_seeds)
    except DistributedError as error:
        print(f"rhel train: {error}", file=sys.stderr)
        return 2
    if not writer:
        return 1 if failures else 0
    summary = write_results([out], out)
    print()
    print(side_by_side(summary["runs"]))
    print(summary["markdown"], end="")
    print(f"wall time {time.perf_counter() - started:.1f} s; results in {out}/results.md, results.csv, curves-*.png")
    return 1 if failures else 0


def side_by_side(runs: list[dict]) -> str:
    """A one-line-per-dataset comparison of the gradient methods' test metrics (mean over seeds)."""
    from rhel.training.results import aggregate

    rows = aggregate(runs)
    lines = []
    for key in dict.fromkeys((r.dataset, r.unit) for r in rows):
        members = [r for r in rows if (r.dataset, r.unit) == key]
        metric = members[0].metric
        scale = 100.0 if metric == "accuracy" else 1.0
        unit = "%" if metric == "accuracy" else ""
        parts = [
            f"{method_label(r.gradient)}{f' ({r.setting})' * bool(r.setting)} {scale * r.mean:.2f}{unit}"
            for r in members
        ]
        chance = ""
        classes = next((run.get("num_classes") for run in runs if (run["dataset"], run["unit"]) == key), None)
        if metric == "accuracy" and classes:
            chance = f"   (chance {100.0 / classes:.1f}%)"
        lines.append(f"{key[0]} ({key[1]} HSSM), test {metric}:  " + "  |  ".join(parts) + chance)
    return "\n".join(lines) + "\n"


def results_command(args: argparse.Namespace) -> int:
    from rhel.training.results import write_results

    out = Path(args.out) if args.out else Path(args.dirs[0])
    try:
        summary = write_results(args.dirs, out, ddof=args.ddof, plots=not args.no_plots)
    except (FileNotFoundError, ValueError) as error:
        print(f"rhel results: {error}", file=sys.stderr)
        return 2
    print(summary["markdown"], end="")
    print(
        f"{len(summary['runs'])} run(s); wrote {out}/results.md, {out}/results.csv"
        + (f" and {len(summary['pngs'])} plot(s)" if summary["pngs"] else "")
    )
    return 0 if summary["runs"] else 1
