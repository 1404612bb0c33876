"""``rhel demo oscillators | fput | damping | noise`` (see :mod:`rhel.physics.demo`).

The options speak the vocabulary of ``rhel train``: ``--steps`` are optimiser (Adam) steps, ``--epsilon`` the RHEL
nudging strength, ``--gradient`` a gradient method name of :data:`rhel.gradients.methods.METHOD_NAMES` (the RHEL
ones: the demos train RHEL against BPTT), ``--seed`` one or more seeds. ``--duration`` and ``--time-steps`` are the
simulated time T and its number of time steps (old spellings ``--T`` and ``--n-steps`` still work, with a notice).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rhel.energies import ContractError
from rhel.physics.systems import PhysicsError
from rhel.training.cli_options import RHEL_METHODS, add_gradient_option, deprecated_alias


def _run(name):
    def func(args: argparse.Namespace) -> int:
        from rhel.physics import demo

        seeds = list(dict.fromkeys(args.seed))
        for seed in seeds:
            out = args.out if len(seeds) == 1 else str(Path(args.out) / f"seed{seed}")
            kwargs = {"out": out, "seed": seed}
            if name in ("oscillators", "fput"):
                kwargs.update(steps=args.steps, lr=args.lr, T=args.duration, n_steps=args.time_steps)
            if name in ("oscillators", "fput", "damping"):
                kwargs.update(epsilon=args.epsilon, gradient=args.gradient)
            if name == "oscillators":
                kwargs["animate"] = not args.no_animation
            if name == "noise":
                kwargs["repeats"] = args.repeats
            try:
                getattr(demo, f"demo_{name}")(**kwargs)
            except demo.DemoArgumentError as err:
                print(f"rhel demo {name}: {err}", file=sys.stderr)
                return 2
            except (PhysicsError, ContractError) as err:
                print(f"rhel demo {name}: {err}")
                return 1
        return 0

    return func


def register(subparsers) -> None:
    """Add ``demo`` with its sub-commands to the ``rhel`` command line."""
    demo = subparsers.add_parser(
        "demo",
        help="physics demonstrations: coupled oscillators trained by Hamiltonian echoes",
        description="Continuous-time RHEL on physical systems defined by their energy (paper §3.1, Eq. 8).",
    )
    sub = demo.add_subparsers(dest="demo", metavar="DEMO")
    specs = {
        "oscillators": "the paper's six oscillators: trajectory, echoes, gradient accumulator, training",
        "fput": "a nonlinear FPUT-beta chain trained with RHEL and BPTT",
        "damping": "gradient error vs friction gamma (RHEL needs a non-dissipative system)",
        "noise": "gradient cosine vs read-out noise and parameter drift (device precision)",
    }
    for name, text in specs.items():
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--out", default=f"runs/demo-{name}",
                       help="output folder; OUT/seed<k> for several seeds (default: %(default)s)")  # fmt: skip
        p.add_argument("--seed", type=int, nargs="+", default=[0], metavar="SEED",
                       help="seed(s) of the task, one demo each (default: 0)")  # fmt: skip
        if name in ("oscillators", "fput"):
            p.add_argument("--steps", type=int, default=150, help="Adam (optimiser) steps (default: %(default)s)")
            p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default: %(default)s)")
            p.add_argument("--duration", type=float, default=20.0, metavar="T",
                           help="simulated time T (default: %(default)s)")  # fmt: skip
            p.add_argument("--time-steps", type=int, default=400, metavar="K",
                           help="time steps of the simulation, dt = T / K (default: %(default)s)")  # fmt: skip
            deprecated_alias(p, "--T", "--duration")
            deprecated_alias(p, "--n-steps", "--time-steps")
        if name in ("oscillators", "fput", "damping"):
            p.add_argument(
                "--epsilon", type=float, default=1e-3, help="RHEL nudging strength, absolute (default: %(default)s)"
            )
            add_gradient_option(p, RHEL_METHODS, default="rhel", several=False,
                                what="the RHEL method compared with BPTT")  # fmt: skip
        if name == "oscillators":
            p.add_argument("--no-animation", action="store_true", help="skip the GIF/MP4 animation")
        if name == "noise":
            p.add_argument("--repeats", type=int, default=5, help="seeds per noise level (default: %(default)s)")
        p.set_defaults(func=_run(name))
    demo.set_defaults(func=lambda args: (demo.print_help(), 2)[1])
