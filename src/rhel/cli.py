"""The ``rhel`` command line: ``rhel train | results | evaluate | predict | data | gradcheck | bench | demo``.

Each sub-command lives next to the concept it serves and exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (called with the parsed namespace; it returns an exit status). This module only wires them together, and
imports each lazily so that ``rhel data list`` does not pay for what ``rhel train`` needs.

No error a user can trigger prints a traceback: :func:`main` maps the library's errors (:func:`classify`) to a one-
or two-line message on stderr and an exit status, unless ``--debug`` or ``RHEL_DEBUG=1`` asks for the traceback:

============================================================================  ======
error                                                                         status
============================================================================  ======
``ConfigError``, ``RunExistsError``, ``UnknownDatasetError``, other           2
``ValueError`` / ``TypeError`` (argument validation: usage)
``DataError``, ``ContractError``, ``PhysicsError``, ``CheckpointError``,      1
``NonFiniteError``, ``RunLockedError``, ``EquinoxRuntimeError``, ``OSError``
(runtime)
``KeyboardInterrupt`` (Ctrl-C; ``RunInterrupted`` names the step)             130
============================================================================  ======

Any other exception is a bug in rhel and keeps its traceback. ``rhel --debug`` (or ``RHEL_DEBUG=1``) shows the
traceback of every error.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version

#: (sub-command module, its ``register`` function) in the order ``rhel --help`` lists them.
COMMAND_MODULES = (
    "rhel.training.cli",  # train, results
    "rhel.training.inference_cli",  # evaluate, predict
    "rhel.data.cli",  # data list | info | fetch
    "rhel.reports.cli",  # gradcheck, bench
    "rhel.physics.cli",  # demo
)


USAGE, RUNTIME, INTERRUPTED = 2, 1, 130

#: Extra advice for file-system errors that mean "this output location cannot take the file".
_WRITE_ADVICE = {
    errno.ENOSPC: "free some space or choose another output directory; the last complete checkpoint stays usable",
    errno.EACCES: "make it writable or choose another output directory",
    errno.EROFS: "choose an output directory on a writable file system",
}


def _lines(text: str, limit: int = 2) -> str:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:limit])


def classify(error: BaseException) -> tuple[int, str] | None:
    """``(exit status, message)`` for an error a user can trigger, or ``None`` for an unexpected one (a bug)."""
    import equinox as eqx

    from rhel.data.core import DataError, UnknownDatasetError
    from rhel.training.checkpoints import CheckpointError
    from rhel.training.config import ConfigError
    from rhel.training.experiment import NonFiniteError
    from rhel.training.faults import RunExistsError, RunLockedError, failure_cause

    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED, str(error) or "interrupted"
    if isinstance(error, OSError):
        where = f": {error.filename}" if error.filename else ""
        message = f"{error.strerror or error}{where}"
        advice = _WRITE_ADVICE.get(error.errno)
        return RUNTIME, message + (f"\n{advice}" if advice else "")
    if isinstance(error, eqx.EquinoxRuntimeError):
        return RUNTIME, failure_cause(error)
    if isinstance(error, ConfigError | RunExistsError | UnknownDatasetError):
        return USAGE, _lines(str(error))
    if isinstance(error, DataError | CheckpointError | NonFiniteError | RunLockedError):
        return RUNTIME, _lines(str(error))
    # the energy contract and the physics module (matched by name: both modules are free to move)
    if any(cls.__name__ in ("ContractError", "PhysicsError") for cls in type(error).__mro__):
        return RUNTIME, _lines(str(error))
    if isinstance(error, ValueError | TypeError):
        return USAGE, _lines(str(error))
    return None


def report_error(error: BaseException, prefix: str) -> int:
    """Print ``prefix: message`` for ``error`` on stderr and return its exit status; re-raise an unexpected error."""
    known = classify(error)
    if known is None:
        raise error
    status, message = known
    print(f"{prefix}: {message}", file=sys.stderr)
    return status


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
        parser.print_help()  # `rhel` alone never starts work in the current folder: `rhel train` does
        return 0
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    if args.debug or os.environ.get("RHEL_DEBUG", "") not in ("", "0"):
        return int(args.func(args) or 0)
    prefix = f"rhel {args.command}"
    with warnings.catch_warnings():
        # one line per warning, as for errors (the library's warnings are raised deep inside JAX's callbacks)
        warnings.showwarning = lambda message, category, *_, **__: print(
            f"{prefix}: {category.__name__}: {message}", file=sys.stderr
        )
        try:
            return int(args.func(args) or 0)
        except (Exception, KeyboardInterrupt) as error:
            return report_error(error, prefix)
