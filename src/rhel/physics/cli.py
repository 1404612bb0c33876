"""``rhel demo oscillators | fput | damping | noise`` (see :mod:`rhel.physics.demo`)."""

from __future__ import annotations

import argparse

from rhel.energies import ContractError
from rhel.physics.systems import PhysicsError


def _run(name):
    def func(args: argparse.Namespace) -> int:
        from rhel.physics import demo

        kwargs = {"out": args.out, "seed": args.seed}
        if name in ("oscillators", "fput"):
            kwargs.update(steps=args.steps, lr=args.lr, epsilon=args.epsilon, T=args.T, n_steps=args.n_steps)
        if name == "oscillators":
            kwargs["animate"] = not args.no_animation
        if name == "damping":
            kwargs["epsilon"] = args.epsilon
        if name == "noise":
            kwargs["repeats"] = args.repeats
        try:
            getattr(demo, f"demo_{name}")(**kwargs)
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
        p.add_argument("--out", default=f"runs/demo-{name}", help="output folder (default: %(default)s)")
        p.add_argument("--seed", type=int, default=0, help="seed of the task (default: %(default)s)")
        if name in ("oscillators", "fput"):
            p.add_argument("--steps", type=int, default=150, help="Adam steps (default: %(default)s)")
            p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default: %(default)s)")
            p.add_argument("--T", type=float, default=20.0, help="time horizon (default: %(default)s)")
            p.add_argument("--n-steps", type=int, default=400, help="time steps (default: %(default)s)")
        if name in ("oscillators", "fput", "damping"):
            p.add_argument(
                "--epsilon", type=float, default=1e-3, help="RHEL nudging strength, absolute (default: %(default)s)"
            )
        if name == "oscillators":
            p.add_argument("--no-animation", action="store_true", help="skip the GIF/MP4 animation")
        if name == "noise":
            p.add_argument("--repeats", type=int, default=5, help="seeds per noise level (default: %(default)s)")
        p.set_defaults(func=_run(name))
    demo.set_defaults(func=lambda args: (demo.print_help(), 2)[1])
