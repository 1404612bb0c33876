"""Run folders that are never silently wrong: one owner at a time, no finished run lost, failures recorded.

* :func:`holds_run_lock` wraps :func:`rhel.training.loop.train_run`: while a process trains into a run folder it holds
  an exclusive ``fcntl.flock`` on ``<run>/.lock`` (which holds its pid). The kernel drops the lock when the process
  exits or dies (``kill -9`` included), so a crashed run never blocks its ``--resume``; a second live process gets
  :class:`RunLockedError` naming the owner's pid.
* :func:`refuse_finished` keeps a finished run (its ``final.json``) unless ``overwrite`` or ``resume`` is asked for.
* :func:`clamp_batch_size` turns a batch larger than the training set into the training set's size, with a notice.
* :func:`record_failure` writes ``failed.json`` (the cause in one line) into the folder of a run that diverged, and
  :func:`find_failures` / :func:`failures_markdown` list such runs in ``results.md``.
* :func:`read_json` reads a run's JSON files and names the file when one is corrupt (:class:`RunFileError`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rhel.training.checkpoints import atomic_write_text
from rhel.training.config import TrainConfig

LOCK_FILE = ".lock"
FAILED_FILE = "failed.json"
#: Written when a run ends (:func:`rhel.training.loop.train_run`); its presence marks a finished run.
FINAL_FILE = "final.json"

F = TypeVar("F", bound=Callable[..., Any])


class RunLockedError(RuntimeError):
    """Another live process is training into the same run folder."""


class RunExistsError(ValueError):
    """A run folder holds a finished run, and neither resuming nor overwriting it was asked for."""


class RunFileError(ValueError):
    """A run's file (``final.json``, ``metrics.jsonl``, ``failed.json``) is corrupt or truncated; the message names
    it."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the message says at which step, and how to continue."""

    def __init__(self, step: int, run_dir: str | Path):
        super().__init__(f"interrupted at step {step} in {run_dir}; resume with --resume")
        self.step = step
        self.run_dir = Path(run_dir)

    def __str__(self) -> str:
        return str(self.args[0])


def notice(message: str) -> None:
    """A one-line notice on stderr (something was adjusted, nothing failed)."""
    print(f"rhel: notice: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- the lock


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of a run folder (created if needed) for the duration of the ``with`` block.

    **Arguments:**

    - `run_dir`: the run folder; the lock file is ``<run_dir>/.lock`` and holds the owner's pid.

    **Raises:** :class:`RunLockedError` naming the owner's pid when another process holds it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"run folder {run_dir} is in use by another rhel process (pid {owner}); "
                "wait for it to finish, stop it, or train into another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield run_dir
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holds_run_lock(train: F) -> F:
    """Decorate ``train(config, run_dir, ...)`` so that it runs under :func:`run_lock` of ``run_dir``; a stale
    ``failed.json`` of an earlier attempt is removed once the lock is held. In a multi-process (``jax.distributed``)
    run only process 0 takes the lock: the others share its folder and write nothing."""

    @functools.wraps(train)
    def locked(config, run_dir, *args, **kwargs):
        import jax

        if jax.process_index() != 0:  # a distributed run: process 0 owns (and alone writes) the folder
            return train(config, run_dir, *args, **kwargs)
        with run_lock(run_dir) as folder:
            (folder / FAILED_FILE).unlink(missing_ok=True)
            return train(config, run_dir, *args, **kwargs)

    return locked  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- run-folder rules


def refuse_finished(run_dir: str | Path, *, resume: bool, overwrite: bool) -> None:
    """Raise :class:`RunExistsError` if ``run_dir`` holds a finished run that would be replaced silently."""
    final = Path(run_dir) / FINAL_FILE
    if final.is_file() and not (resume or overwrite):
        raise RunExistsError(
            f"{run_dir} holds a finished run ({FINAL_FILE}); pass --resume to keep it or --overwrite to replace it"
        )


def clamp_batch_size(config: TrainConfig, num_train: int) -> TrainConfig:
    """``config`` with ``optim.batch_size`` (and ``optim.eval_batch_size``) at most ``num_train``, with a notice
    when it changed; the resolved value is what the run writes to ``config.json``."""
    optim = config.optim
    if optim.batch_size <= num_train:
        return config
    notice(f"--batch-size {optim.batch_size} exceeds the {num_train} training examples; using {num_train}")
    optim = dataclasses.replace(optim, batch_size=num_train)
    return dataclasses.replace(config, optim=optim)


# ---------------------------------------------------------------------------------------------- failures


def failure_cause(error: BaseException) -> str:
    """The cause of a failed run in one line (for an ``eqx.error_if`` error, its message without the JAX advice)."""
    text = str(error)
    found = re.search(r"EquinoxRuntimeError: (.+)", text)
    if found:
        return found.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def record_failure(run_dir: str | Path, config: TrainConfig, error: BaseException) -> str:
    """Write ``<run_dir>/failed.json`` for a run that stopped on ``error``; return the one-line cause."""
    cause = failure_cause(error)
    run_dir = Path(run_dir)
    record = {
        "name": config.name,
        "dataset": config.data.name,
        "unit": config.model.unit,
        "gradient": config.gradient.methods[0],
        "seed": config.seeds[0],
        "status": "failed",
        "error": type(error).__name__,
        "cause": cause,
    }
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / FAILED_FILE, json.dumps(record, indent=2) + "\n")
    except OSError as os_error:  # the failure is still reported on the console
        notice(f"could not record the failure in {run_dir}: {os_error.strerror}")
    return cause


def read_json(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A run's JSON object file; :class:`RunFileError` naming the file when it is corrupt, truncated, not an object,
    or lacks one of the ``required`` keys."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFileError(f"{path} is corrupt or truncated ({error}); delete it or re-run that run") from None
    if not isinstance(record, dict):
        raise RunFileError(f"{path} is corrupt: expected a JSON object, found {type(record).__name__}")
    missing = [key for key in required if key not in record]
    if missing:
        raise RunFileError(f"{path} is corrupt: it lacks {', '.join(missing)}; delete it or re-run that run")
    return record


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; :class:`RunFileError` naming the file and line when one is corrupt."""
    path = Path(path)
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise RunFileError(f"{path} line {number} is corrupt or truncated ({error.msg})") from None
        if not isinstance(record, dict):
            raise RunFileError(f"{path} line {number} is corrupt: expected a JSON object")
        records.append(record)
    return records


def find_failures(paths: list[str | Path]) -> list[dict[str, Any]]:
    """The ``failed.json`` records under ``paths`` (searched recursively), each with its ``run_dir``; a corrupt
    one is reported as a notice and skipped."""
    failures = []
    for root in paths:
        for dirpath, _dirs, files in os.walk(root):
            if FAILED_FILE in files:
                try:
                    record = read_json(Path(dirpath) / FAILED_FILE)
                except RunFileError as error:
                    notice(f"skipping: {error}")
                    continue
                failures.append({**record, "run_dir": str(dirpath)})
    return sorted(failures, key=lambda r: r["run_dir"])


def failures_markdown(failures: list[dict[str, Any]]) -> str:
    """A markdown table of the failed runs (empty when none failed)."""
    if not failures:
        return ""
    lines = ["Failed runs (not in the table above)\n", "| run | cause |", "|---|---|"]
    for record in failures:
        cause = str(record.get("cause", "unknown")).replace("|", "\\|")
        lines.append(f"| {Path(record['run_dir']).name} | {cause} |")
    return "\n".join(lines) + "\n\n"
