"""The ``rhel`` command line: ``rhel train | results | evaluate | predict | data | gradcheck | bench | demo``.

Each sub-command lives next to the concept it serves and exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (called with the parsed namespace; it returns an exit status). This module only wires them together, and
imports each lazily so that ``rhel data list`` does not pay for what ``rhel train`` needs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

#: (sub-command module, its ``register`` function) in the order ``rhel --help`` lists them.
COMMAND_MODULES = (
    "rhel.training.cli",  # train, results
    "rhel.training.inference_cli",  # evaluate, predict
    "rhel.data.cli",  # data list | info | fetch
    "rhel.reports.cli",  # gradcheck, bench
    "rhel.physics.cli",  # demo
)


def _version() -> str:
    try:
        return version("rhel")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The ``rhel`` parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="rhel",
        description="Recurrent Hamiltonian Echo Learning: train Hamiltonian sequence models with RHEL or BPTT.",
    )
    parser.add_argument("--version", action="version", version=f"rhel {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``rhel`` command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:
        parser.print_help()  # `rhel` alone never starts work in the current folder: `rhel train` does
        return 0
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)
