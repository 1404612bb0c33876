"""How the ``rhel`` command line reports an error: one or two lines on stderr and an exit status, no traceback.

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

import errno
import sys

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
