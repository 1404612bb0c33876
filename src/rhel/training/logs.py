"""What a run reports while it trains: log lines, callbacks, TensorBoard scalars, and its provenance.

:func:`rhel.training.loop.train_run` calls each of its ``callbacks`` at every evaluation with the metrics record it
appends to ``metrics.jsonl`` (``step``, ``epoch``, ``train_loss``, ``val_<metric>``, ``best_step``, ``elapsed_s``,
...). When the progress bar is off (``progress=False``, ``rhel train --no-progress``) or stderr is not a terminal it
adds a :class:`LogLines` callback, which prints one line per evaluation::

    eval step 50/200  loss 0.6812  val_accuracy 0.5312  best 0.5312 (step 50)  elapsed 12.3 s  4.1 steps/s

``rhel train --log tensorboard`` adds a :class:`TensorBoardScalars` per run (``RUN_DIR/tensorboard``), which needs
the optional ``tensorboardX`` package (``pip install rhel[tensorboard]``).
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

#: A training callback: called with each evaluation's metrics record (a dict of JSON values).
Callback = Callable[[dict[str, Any]], Any]
#: The destinations ``rhel train --log`` knows.
LOGGERS = ("tensorboard",)

__all__ = [
    "LOGGERS",
    "Callback",
    "LogLines",
    "TensorBoardScalars",
    "format_record",
    "make_loggers",
    "provenance",
    "require_tensorboard",
]


def _metric_name(record: dict[str, Any]) -> str:
    """``accuracy`` or ``mse``: the metric whose ``val_`` entry the record holds."""
    return next((k[len("val_") :] for k in record if k.startswith("val_") and k != "val_loss"), "loss")


def format_record(record: dict[str, Any], *, total_steps: int | None = None, steps_per_s: float | None = None) -> str:
    """One log line for an evaluation's metrics record.

    **Arguments:**

    - `record`: a record of ``metrics.jsonl`` (as the callbacks receive it).
    - `total_steps`: the run's number of steps, written as ``step k/total``.
    - `steps_per_s`: the training speed since the previous evaluation.
    """
    metric = _metric_name(record)
    step = f"{record['step']}/{total_steps}" if total_steps else f"{record['step']}"
    best = record.get(f"best_val_{metric}")
    parts = [
        f"eval step {step}",
        f"loss {record['train_loss']:.4f}",
        f"val_{metric} {record[f'val_{metric}']:.4f}",
        f"best {best:.4f} (step {record['best_step']})" if best is not None else "best -",
        f"elapsed {record['elapsed_s']:.1f} s",
    ]
    if steps_per_s is not None and math.isfinite(steps_per_s):
        parts.append(f"{steps_per_s:.3g} steps/s")
    return "  ".join(parts)


class LogLines:
    """A callback that writes :func:`format_record`'s line per evaluation (default: to stderr), with the
    steps per second since the previous one (since the run's start for the first)."""

    def __init__(self, *, total_steps: int | None = None, prefix: str = "", stream: TextIO | None = None):
        """**Arguments:**

        - `total_steps`: the run's number of steps (shown as ``step k/total``).
        - `prefix`: written before each line (e.g. the run's name).
        - `stream`: where to write (default: ``sys.stderr`` at the time of writing).
        """
        self.total_steps, self.prefix, self.stream = total_steps, prefix, stream
        self._last: tuple[int, float] | None = None

    def __call__(self, record: dict[str, Any]) -> None:
        step, elapsed = record["step"], record["elapsed_s"]
        last_step, last_elapsed = self._last or (0, 0.0)
        speed = (step - last_step) / (elapsed - last_elapsed) if elapsed > last_elapsed else None
        if self._last is None and step > 0 and elapsed > 0:
            speed = step / elapsed  # a resumed run: its average so far
        self._last = (step, elapsed)
        stream = self.stream or sys.stderr
        print(self.prefix + format_record(record, total_steps=self.total_steps, steps_per_s=speed), file=stream,
              flush=True)  # fmt: skip


def require_tensorboard():
    """The ``tensorboardX`` module; an ``ImportError`` saying how to install it when it is missing."""
    try:
        import tensorboardX
    except ImportError:
        raise ImportError("--log tensorboard needs the tensorboardX package: pip install 'rhel[tensorboard]'") from None
    return tensorboardX


class TensorBoardScalars:
    """A callback that writes every number of each record as a TensorBoard scalar at the record's step (event
    files under ``log_dir``; flushed at each evaluation). Needs ``tensorboardX`` (``pip install rhel[tensorboard]``)."""

    def __init__(self, log_dir: str | Path):
        """**Arguments:**

        - `log_dir`: the folder of the event files (``RUN_DIR/tensorboard`` for ``rhel train --log tensorboard``).
        """
        self.log_dir = Path(log_dir)
        self.writer = require_tensorboard().SummaryWriter(str(self.log_dir))

    def __call__(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                self.writer.add_scalar(key, float(value), step)
        self.writer.flush()

    def close(self) -> None:
        """Close the event file."""
        self.writer.close()


def make_loggers(destinations: Sequence[str], run_dir: str | Path) -> list[Callback]:
    """The callbacks for ``rhel train --log`` destinations (names of :data:`LOGGERS`) of one run."""
    unknown = sorted(set(destinations) - set(LOGGERS))
    if unknown:
        raise ValueError(f"unknown --log destination(s) {unknown}; expected some of {', '.join(LOGGERS)}")
    return [TensorBoardScalars(Path(run_dir) / "tensorboard") for _ in dict.fromkeys(destinations)]


def _git_commit(folder: Path) -> str | None:
    """The commit checked out in the git work tree holding ``folder`` (``+dirty`` with uncommitted changes);
    ``None`` outside a git checkout or without git."""
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)  # fmt: skip
        tracked = subprocess.run(["git", "-C", str(folder), "ls-files", "."], capture_output=True, text=True,
                                 timeout=10)  # fmt: skip
        if commit.returncode != 0 or not tracked.stdout.strip():  # not in a checkout, or an installed copy in one
            return None
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """What ``environment.json`` records besides the versions: the command line (``sys.argv``) and, when rhel runs
    from a git checkout, its commit (``None`` otherwise)."""
    return {
        "command_line": list(sys.argv if argv is None else argv),
        "git_commit": _git_commit(Path(__file__).resolve().parent),
    }
