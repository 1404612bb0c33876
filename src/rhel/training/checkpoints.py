"""Atomic checkpoints: a pytree file (``eqx.tree_serialise_leaves``) plus a JSON sidecar that commits it.

Each checkpoint is written to ``checkpoint-<step>.eqx`` through a temporary file and ``os.replace``; the sidecar
``checkpoint.json`` (also replaced atomically, and written last) names the file and holds the non-array state. A
run killed at any moment therefore leaves the previous complete checkpoint in place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx
from jaxtyping import PyTree

SIDECAR = "checkpoint.json"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new content, never a torn file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_serialise(path: str | Path, pytree: PyTree) -> None:
    """``eqx.tree_serialise_leaves`` through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        eqx.tree_serialise_leaves(f, pytree)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_checkpoint(run_dir: str | Path, step: int, pytree: PyTree, meta: dict[str, Any]) -> Path:
    """Write the pytree for ``step``, then commit it with the sidecar; older checkpoint files are removed."""
    run_dir = Path(run_dir)
    name = f"checkpoint-{step:09d}.eqx"
    atomic_serialise(run_dir / name, pytree)
    atomic_write_text(run_dir / SIDECAR, json.dumps({**meta, "step": step, "file": name}, indent=2) + "\n")
    for old in run_dir.glob("checkpoint-*.eqx"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return run_dir / name


def load_checkpoint(run_dir: str | Path, like: PyTree) -> tuple[PyTree, dict[str, Any]] | None:
    """The last committed checkpoint as ``(pytree shaped like `like`, sidecar dict)``, or ``None`` if none."""
    run_dir = Path(run_dir)
    sidecar = run_dir / SIDECAR
    if not sidecar.is_file():
        return None
    meta = json.loads(sidecar.read_text())
    with open(run_dir / meta["file"], "rb") as f:
        pytree = eqx.tree_deserialise_leaves(f, like)
    return pytree, meta
