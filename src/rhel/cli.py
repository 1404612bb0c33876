"""The ``rhel`` command line: ``rhel train | results | data | gradcheck | bench | demo``.

Each sub-command lives next to the concept it serves and exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (called with the parsed namespace; it returns an exit status). This module only wires them together, and
imports each lazily so that ``rhel data list`` does not pay for what ``rhel train`` needs.

No error a user can trigger prints a traceback: :func:`main` maps the library's errors to a one- or two-line message
on stderr and an exit status (see :mod:`rhel.errors`), unless ``--debug`` or ``RHEL_DEBUG=1`` asks for the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from rhel.errors import report_error

#: (sub-command module, its ``register`` function) in the order ``rhel --help`` lists them.
COMMAND_MODULES = (
    "rhel.training.cli",  # train, results
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
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error (also: RHEL_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``rhel`` command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv:
        # The main job on its embedded default: `rhel` alone behaves like `rhel train`.
        argv = ["train"]
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    if args.debug or os.environ.get("RHEL_DEBUG", "") not in ("", "0"):
        return int(args.func(args) or 0)
    try:
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as error:
        return report_error(error, f"rhel {args.command}")
