"""Atomic checkpoints: a pytree file (``eqx.tree_serialise_leaves``) plus a JSON sidecar that commits it.

Each checkpoint is written to ``checkpoint-<step>.eqx`` through a temporary file and ``os.replace``; the sidecar
``checkpoint.json`` (also replaced atomically, and written last) names the file, its sha256 digest and the non-array
state. A run killed at any moment, or a write that fails (a full or read-only disk), therefore leaves the previous
complete checkpoint in place; :func:`load_checkpoint` verifies the digest and refuses a corrupt or truncated
checkpoint with :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
from jaxtyping import PyTree

SIDECAR = "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from: corrupt, truncated, modified or missing; the message names the
    file."""


def _atomic_write(path: Path, mode: str, write) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then ``os.replace`` it onto ``path``. On a failed write
    (``ENOSPC``, ``EACCES``, ...) the temporary file is removed, ``path`` keeps its old content and the ``OSError``
    names ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OSError(error.errno, f"{error.strerror} (nothing was replaced)", str(path)) from error


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new content, never a torn file."""
    _atomic_write(Path(path), "w", lambda f: f.write(text))


def atomic_serialise(path: str | Path, pytree: PyTree) -> None:
    """``eqx.tree_serialise_leaves`` through a temporary file and ``os.replace``."""
    _atomic_write(Path(path), "wb", lambda f: eqx.tree_serialise_leaves(f, pytree))


def file_digest(path: str | Path) -> str:
    """The sha256 digest of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(run_dir: str | Path, step: int, pytree: PyTree, meta: dict[str, Any]) -> Path:
    """Write the pytree for ``step``, then commit it with the sidecar; older checkpoint files are removed."""
    run_dir = Path(run_dir)
    name = f"checkpoint-{step:09d}.eqx"
    atomic_serialise(run_dir / name, pytree)
    sidecar = {**meta, "step": step, "file": name, "sha256": file_digest(run_dir / name)}
    atomic_write_text(run_dir / SIDECAR, json.dumps(sidecar, indent=2) + "\n")
    for old in run_dir.glob("checkpoint-*.eqx"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return run_dir / name


def load_checkpoint(run_dir: str | Path, like: PyTree) -> tuple[PyTree, dict[str, Any]] | None:
    """The last committed checkpoint as ``(pytree shaped like `like`, sidecar dict)``, or ``None`` if none.

    **Raises:** :class:`CheckpointError` naming the file when the sidecar or the pytree file is corrupt, truncated,
    missing, or does not match the sha256 digest recorded with it.
    """
    run_dir = Path(run_dir)
    sidecar = run_dir / SIDECAR
    if not sidecar.is_file():
        return None
    advice = "delete the run folder or start it again with --overwrite"
    try:
        meta = json.loads(sidecar.read_text())
        path = run_dir / meta["file"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise CheckpointError(f"{sidecar} is corrupt or truncated ({type(error).__name__}); {advice}") from None
    if not path.is_file():
        raise CheckpointError(f"{path} (named by {sidecar}) is missing; {advice}")
    if "sha256" in meta and file_digest(path) != meta["sha256"]:
        raise CheckpointError(f"{path} does not match its sha256 digest in {SIDECAR} (corrupt or modified); {advice}")
    try:
        with open(path, "rb") as f:
            pytree = eqx.tree_deserialise_leaves(f, like)
    except (ValueError, EOFError, OSError, RuntimeError) as error:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(error).__name__}); {advice}") from None
    return pytree, meta
