"""Run folder names and the settings that tell runs apart.

A run folder is ``<dataset>-<unit>-<method>-seed<seed>-<digest>``: the digest is the first 8 hex digits of the
sha256 of the run's *settings* (:func:`run_settings`: the resolved config without the seed, the gradient method, the
config's name and the data folder, and without the RHEL-only ε settings for other methods), and the full config is
written beside it (``config.json``). The name is a deterministic function of the config and the seed, so
``--resume`` finds its folder again, and runs that differ in any setting (``--lr``, ``--epsilon``, ...) written to
one ``--out`` never collide.

``rhel results`` groups runs by dataset × unit × method × settings, and labels each group with the settings that
differ between groups (:func:`setting_labels`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rhel.gradients.methods import GRADIENT_METHODS
from rhel.training.config import TrainConfig, config_to_dict

#: Config keys a run's identity does not depend on (the seed and the method are in the folder name already).
IDENTITY_FREE_KEYS = ("name", "seeds", "gradient.methods", "data.data_dir")
#: Keys that only RHEL methods read.
RHEL_ONLY_KEYS = ("gradient.epsilon", "gradient.relative_epsilon", "gradient.resync_every")
#: Keys added after run folders existed, with the default that reproduces the runs made before them: omitted from a
#: run's settings at that default, so that the runs made before keep their names (and resume).
LATER_KEYS = {"gradient.resync_every": None}


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and key != "options":
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def run_settings(config: TrainConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a single run as flat ``{"optim.lr": 0.01, ...}`` (JSON values), without the keys that do not
    change what is trained (:data:`IDENTITY_FREE_KEYS`; ε for a method that is not RHEL).

    **Arguments:**

    - `config`: a single-run :class:`TrainConfig`, or its ``config.json`` dict (from a run folder).
    """
    data = config_to_dict(config) if isinstance(config, TrainConfig) else dict(config)
    flat = _flatten(json.loads(json.dumps(data)))  # tuples -> lists, as read back from config.json
    methods = flat.get("gradient.methods") or []
    drop = set(IDENTITY_FREE_KEYS)
    row = GRADIENT_METHODS.get(methods[0]) if len(methods) == 1 else None
    if row is not None and row.estimator is None:
        drop.update(RHEL_ONLY_KEYS)
    drop.update(k for k, default in LATER_KEYS.items() if flat.get(k, default) == default)
    return {k: v for k, v in sorted(flat.items()) if k not in drop}


def settings_digest(config: TrainConfig | Mapping[str, Any]) -> str:
    """The first 8 hex digits of the sha256 of :func:`run_settings` (canonical JSON)."""
    text = json.dumps(run_settings(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def legacy_run_name(config: TrainConfig) -> str:
    """``<dataset>-<unit>-<method>-seed<seed>``: the folder name of runs written before names carried a digest."""
    dataset = Path(config.data.name).stem if ("/" in config.data.name) else config.data.name
    return f"{dataset}-{config.model.unit}-{config.gradient.methods[0]}-seed{config.seeds[0]}"


def run_name(config: TrainConfig) -> str:
    """``<dataset>-<unit>-<method>-seed<seed>-<settings digest>`` for a single-run config."""
    return f"{legacy_run_name(config)}-{settings_digest(config)}"


def run_dir_for(out: str | Path, config: TrainConfig) -> Path:
    """The folder of a single run under ``out``: :func:`run_name`, or an older run's folder
    (:func:`legacy_run_name`) whose ``config.json`` is this very config, so that ``--resume`` continues it."""
    out = Path(out)
    legacy = out / legacy_run_name(config)
    try:
        if json.loads((legacy / "config.json").read_text()) == json.loads(json.dumps(config_to_dict(config))):
            return legacy
    except (OSError, ValueError):
        pass
    return out / run_name(config)


def _display(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)  # exact: two settings never share a label
    if value is None:
        return "default"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def setting_labels(settings: Iterable[Mapping[str, Any] | None]) -> list[str]:
    """A short label per settings dict: the keys whose values differ between them, ``"lr=0.01, epsilon=0.1"`` (the
    last part of each key); ``""`` for all when they agree, or for a run without settings (an old run folder)."""
    settings = list(settings)
    known = [s for s in settings if s is not None]
    keys = sorted({k for s in known for k in s})
    varying = [k for k in keys if len({json.dumps(s.get(k), sort_keys=True) for s in known}) > 1]
    short = {k: k.rsplit(".", 1)[-1] for k in varying}
    if len(set(short.values())) < len(short):
        short = {k: k for k in varying}
    return [
        "" if s is None else ", ".join(f"{short[k]}={_display(s.get(k))}" for k in varying if k in s) for s in settings
    ]
