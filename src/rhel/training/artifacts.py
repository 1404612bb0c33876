"""Trained models as files that rebuild themselves: :func:`save_model`, :func:`load_model`, :func:`load_run`.

A model file (``best_model.eqx`` in a run folder) follows equinox's serialisation recipe: one JSON header line, then
the leaves of ``(model, state)`` as written by ``eqx.tree_serialise_leaves``. The header holds everything needed to
use the model without the dataset it was trained on::

    {"format": "rhel-model", "version": 1,
     "hyperparameters": {...the HSSM's constructor arguments...}, "dtype": "float32",
     "info": {...the training dataset's DatasetInfo...}, "classes": ["a", "b"] or null,
     "standardization": {"mean": [...], "std": [...]} or null,
     "sha256": "<digest of the leaves>"}

:func:`load_model` verifies the digest before it deserialises anything (a truncated or altered file raises
:class:`ModelFileError` naming it), rebuilds the HSSM's skeleton from the hyper-parameters and fills in the leaves.
``standardization`` is the per-channel ``(x - mean) / std`` applied to raw inputs before the model sees them; it is
``null`` for ``rhel train`` runs (they train on the arrays ``rhel.data.load`` returns) and :meth:`TrainedModel.predict`
applies it when present.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from rhel.data.core import DataError, DatasetInfo, check_class_indices, pad_sequences
from rhel.data.formats import read_arff, read_ts, read_ucr_text
from rhel.models import HSSM, apply_batch
from rhel.training.config import TrainConfig, config_from_dict

MODEL_FORMAT = "rhel-model"
MODEL_FORMAT_VERSION = 1
#: The files of a run folder that :func:`load_run` reads.
RUN_MODEL_FILE = "best_model.eqx"
RUN_CONFIG_FILE = "config.json"
RUN_FINAL_FILE = "final.json"
#: Input file suffixes :func:`read_inputs` understands.
INPUT_SUFFIXES = (".npz", ".tsv", ".txt", ".ts", ".arff")

__all__ = [
    "ModelFileError",
    "TrainedModel",
    "load_model",
    "load_run",
    "read_inputs",
    "save_model",
]


class ModelFileError(ValueError):
    """A model file or run folder that cannot be used: missing, not an rhel model file, corrupt or altered."""


@dataclass(frozen=True)
class TrainedModel:
    """A trained HSSM with what it needs to be used: returned by :func:`load_model` and :func:`load_run`.

    ``model`` and ``state`` are the :class:`rhel.models.HSSM` and its BatchNorm state (in training mode: use
    ``eqx.nn.inference_mode(model)`` or :meth:`predict`). ``info`` and ``classes`` describe the training dataset;
    ``config``, ``final`` and ``run_dir`` are set by :func:`load_run`.
    """

    model: HSSM
    state: eqx.nn.State
    hyperparameters: dict[str, Any]
    info: DatasetInfo | None = None
    classes: tuple[str, ...] | None = None
    standardization: dict[str, list[float]] | None = None
    config: TrainConfig | None = None
    final: dict[str, Any] | None = None
    run_dir: Path | None = None

    @property
    def dtype(self) -> np.dtype:
        """The floating dtype of the model's parameters (inputs are cast to it)."""
        return np.dtype(self.model.encoder.weight.dtype)

    def prepare(self, inputs: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Raw inputs ``(N, L, C)`` (or ``(N, L)``) → the model's inputs: standardised when the model was trained so,
        padded steps zeroed, cast to the model's dtype."""
        x = np.asarray(inputs, dtype=np.float64)
        x = x[:, :, None] if x.ndim == 2 else x
        channels = self.hyperparameters["in_size"]
        if x.ndim != 3 or x.shape[-1] != channels:
            raise DataError(f"inputs of shape {x.shape} given to a model of {channels} channel(s); expected (N, L, C)")
        if self.standardization is not None:
            x = (x - np.asarray(self.standardization["mean"])) / np.asarray(self.standardization["std"])
        if mask is not None:
            x = np.where(np.asarray(mask, dtype=bool)[..., None], x, 0.0)
        return x.astype(self.dtype)

    def predict(self, inputs: np.ndarray, mask: np.ndarray | None = None, *, batch_size: int = 256) -> dict:
        """Run the model on raw inputs in inference mode (dropout off, BatchNorm running statistics).

        **Arguments:**

        - `inputs`: ``(N, L, C)`` (or ``(N, L)`` for one channel), as the training data's loader returns them.
        - `mask`: optional boolean ``(N, L)``, true on the valid steps of padded series.
        - `batch_size`: sequences per forward pass.

        **Returns:** for classification ``{"probabilities": (N, K), "labels": (N,) class indices}`` (plus
        ``"class_names"`` (N,) when the classes have names); for regression ``{"outputs": (N, T, D)}``.
        """
        x = self.prepare(inputs, mask)
        m = None if mask is None else np.asarray(mask, dtype=bool)
        n = x.shape[0]
        batch_size = max(1, min(batch_size, n))
        model = eqx.nn.inference_mode(self.model)
        outputs = []
        for start in range(0, n, batch_size):
            idx = np.minimum(np.arange(start, start + batch_size), n - 1)  # pad the last batch: one compilation
            out = _forward(model, self.state, x[idx], None if m is None else m[idx])
            outputs.append(np.asarray(out)[: min(batch_size, n - start)])
        out = np.concatenate(outputs)
        if self.model.task != "classification":
            return {"outputs": out}
        labels = np.argmax(out, axis=-1)
        result = {"probabilities": np.exp(out), "labels": labels}
        if self.classes is not None:
            result["class_names"] = np.asarray(self.classes)[labels]
        return result


@eqx.filter_jit
def _forward(model, state, x, mask):
    return apply_batch(model, state, x, mask=mask)[0]


# ---------------------------------------------------------------------------------------------- the model file


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: np.asarray(v).tolist()))


def save_model(
    path: str | Path,
    model: HSSM,
    state: eqx.nn.State,
    hyperparameters: dict[str, Any],
    *,
    info: DatasetInfo | None = None,
    classes: tuple[str, ...] | None = None,
    standardization: dict[str, Any] | None = None,
) -> Path:
    """Write a self-describing model file (header line + leaves), atomically (temporary file and ``os.replace``).

    **Arguments:**

    - `path`: the file to write (``.eqx`` by convention).
    - `model`, `state`: the HSSM and its BatchNorm state.
    - `hyperparameters`: the HSSM's constructor arguments (JSON values, no ``key``); see
      :func:`rhel.training.experiment.hssm_hyperparameters`.
    - `info`, `classes`: the training dataset's metadata and class names.
    - `standardization`: ``{"mean": [...], "std": [...]}`` per channel, applied to raw inputs before the model.
    """
    path = Path(path)
    leaves = io.BytesIO()
    eqx.tree_serialise_leaves(leaves, (model, state))
    body = leaves.getvalue()
    header = {
        "format": MODEL_FORMAT,
        "version": MODEL_FORMAT_VERSION,
        "hyperparameters": _jsonable(hyperparameters),
        "dtype": str(np.dtype(model.encoder.weight.dtype)),
        "info": None if info is None else _jsonable(dataclasses.asdict(info)),
        "classes": None if classes is None else [str(c) for c in classes],
        "standardization": None if standardization is None else _jsonable(standardization),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _read_model_file(path: Path) -> tuple[dict[str, Any], bytes]:
    """The verified header and leaves of a model file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    first, _, body = raw.partition(b"\n")
    try:
        header = json.loads(first)
    except (UnicodeDecodeError, ValueError):
        header = None
    if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
        raise ModelFileError(
            f"{path}: not an rhel model file (no header line); files written before rhel 0.2 hold leaves only: "
            "retrain, or rebuild the model with rhel.training.experiment.build_model and eqx.tree_deserialise_leaves"
        )
    if header.get("version", 0) > MODEL_FORMAT_VERSION:
        raise ModelFileError(f"{path}: model file version {header['version']} is newer than this rhel; upgrade rhel")
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        raise ModelFileError(f"{path}: corrupt or altered model file (sha256 mismatch); retrain or restore it")
    return header, body


def load_model(path: str | Path) -> TrainedModel:
    """Load a model file written by :func:`save_model`; its digest is verified first.

    A float64 model switches JAX to double precision (``jax_enable_x64``), as training it did.

    **Raises:** :class:`ModelFileError` for a missing, foreign, corrupt or altered file (the message names it).
    """
    path = Path(path)
    header, body = _read_model_file(path)
    if header["dtype"] == "float64" and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    hyper = dict(header["hyperparameters"])
    skeleton = eqx.filter_eval_shape(lambda: eqx.nn.make_with_state(HSSM)(**hyper, key=jax.random.PRNGKey(0)))
    try:
        model, state = eqx.tree_deserialise_leaves(io.BytesIO(body), skeleton)
    except (ValueError, RuntimeError, OSError) as error:
        raise ModelFileError(f"{path}: the leaves do not match the model its header describes ({error})") from None
    info = header.get("info")
    classes = header.get("classes")
    return TrainedModel(
        model=model,
        state=state,
        hyperparameters=hyper,
        info=None if info is None else DatasetInfo(**info),
        classes=None if classes is None else tuple(classes),
        standardization=header.get("standardization"),
    )


def load_run(run_dir: str | Path) -> TrainedModel:
    """The best model of a run folder with its config, dataset info, class names and ``final.json`` (when the run
    finished); the dataset is not needed.

    **Raises:** :class:`ModelFileError` when the folder has no model file or it cannot be used.
    """
    run_dir = Path(run_dir)
    if not (run_dir / RUN_MODEL_FILE).is_file():
        raise ModelFileError(f"{run_dir}: no {RUN_MODEL_FILE}; give a run folder of `rhel train` (one that evaluated)")
    trained = load_model(run_dir / RUN_MODEL_FILE)
    config_path, final_path = run_dir / RUN_CONFIG_FILE, run_dir / RUN_FINAL_FILE
    config = config_from_dict(json.loads(config_path.read_text())) if config_path.is_file() else None
    final = json.loads(final_path.read_text()) if final_path.is_file() else None
    return dataclasses.replace(trained, config=config, final=final, run_dir=run_dir)


# ---------------------------------------------------------------------------------------------- input files


def _encode(labels: np.ndarray, classes: tuple[str, ...] | None, source: str) -> np.ndarray | None:
    """Archive label strings → class indices of the model's classes (``None`` when they cannot be mapped)."""
    if classes is None:
        return None
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(label) for label in labels} - set(lookup))
    if unknown:
        if all(label == "?" for label in unknown):
            return None  # unlabelled cases
        raise DataError(f"{source}: labels {unknown[:5]} are not classes of the model {list(classes)}")
    return np.array([lookup[str(label)] for label in labels], dtype=np.int64)


def read_inputs(
    path: str | Path, classes: tuple[str, ...] | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Read sequences to predict on: ``(inputs (N, L, C), mask (N, L) or None, targets or None)``.

    The formats users train from: ``.npz`` (arrays ``x`` — or ``inputs``, ``x_test`` — with optional ``mask`` and
    targets ``y`` / ``targets`` / ``y_test``), UCR text (``.tsv``, ``.txt``: label first) and UEA ``.ts`` / ``.arff``
    (labels mapped to class indices through ``classes``; variable-length series padded at the end, with a mask).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such input file (give a .npz, .tsv, .txt, .ts or .arff file)")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{path}: corrupt or truncated .npz ({e})") from None
        x_key = next((k for k in ("x", "inputs", "x_test") if k in arrays), None)
        if x_key is None:
            raise DataError(f"{path}: no inputs array; name it 'x' (N, L[, C]) (found {sorted(arrays)})")
        suffix_of = x_key[1:] if x_key.startswith("x") else ""
        mask = arrays.get(f"mask{suffix_of}", arrays.get("mask"))
        y = next((arrays[k] for k in (f"y{suffix_of}", "targets") if k in arrays), None)
        x = arrays[x_key]
        x = x[:, :, None] if x.ndim == 2 else x
        if y is not None and y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
            y = check_class_indices(y, f"{path} (targets)", None if classes is None else len(classes))
        return x, mask, y
    readers = {".tsv": read_ucr_text, ".txt": read_ucr_text, ".ts": read_ts, ".arff": read_arff}
    if suffix not in readers:
        raise DataError(f"{path}: unknown input format {suffix!r}; use one of {', '.join(INPUT_SUFFIXES)}")
    raw = readers[suffix](path)
    x, mask = pad_sequences(raw.series, None, "end", source=str(path))
    return x, mask, _encode(raw.labels, classes, str(path))
