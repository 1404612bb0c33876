"""Experiment assembly: what one training run is made of, shared by the loop and the reports.

The model (:func:`build_model`), the data (:func:`load_dataset`, :func:`check_finite`, :class:`BatchOrder`), the
optimiser (:func:`make_optimizer`), the jitted training step (:func:`make_train_step`, :func:`train_step_for`) and
the evaluation (:func:`evaluate`). ``rhel gradcheck`` and ``rhel bench`` build their models and steps here, so that
they measure exactly what ``rhel train`` runs; :mod:`rhel.training.loop` adds checkpoints, resume and the logs.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from rhel.data.core import Dataset, Split
from rhel.data.registry import load
from rhel.gradients import AbstractGradient
from rhel.gradients.methods import make_gradient
from rhel.gradients.numerics import tree_all_finite
from rhel.models import HSSM, apply_batch, batch_loss
from rhel.training.config import ConfigError, ModelConfig, OptimConfig, TrainConfig
from rhel.training.runs import run_name as run_name  # the loop and the CLI name run folders with it

#: A split as arrays: inputs, targets and the optional mask.
SplitArrays = tuple[np.ndarray, np.ndarray, np.ndarray | None]
#: The jitted ``(model, state, opt_state, x, y, mask, key) -> (model, state, opt_state, loss, metric)``.
TrainStep = Callable[..., tuple[HSSM, eqx.nn.State, optax.OptState, Array, Array, Array]]


class NonFiniteError(FloatingPointError):
    """A NaN or an infinity in the data or in the training loss."""


# ---------------------------------------------------------------------------------------------- set-up


def environment_info() -> dict[str, Any]:
    """Versions, devices and precision, saved with every run."""

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "rhel": ver("rhel"),
        **{name: ver(name) for name in ("jax", "jaxlib", "equinox", "optax", "numpy")},
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64_enabled": bool(jax.config.jax_enable_x64),
        "float_dtype": str(jnp.zeros(()).dtype),
    }


def make_optimizer(optim: OptimConfig) -> optax.GradientTransformation:
    """Adam with the configured (by default constant) learning rate."""
    if optim.schedule == "constant":
        lr = optim.lr
    elif optim.schedule == "cosine":
        lr = optax.cosine_decay_schedule(optim.lr, optim.steps)
    else:
        lr = optax.warmup_cosine_decay_schedule(0.0, optim.lr, optim.warmup_steps, optim.steps)
    return optax.adam(lr)


def hssm_hyperparameters(model: ModelConfig, dataset: Dataset) -> dict[str, Any]:
    """The :class:`HSSM` constructor arguments (JSON values, no key) for a dataset: what a model file records.

    **Arguments:**

    - `model`: the architecture.
    - `dataset`: gives the channels, the task, the classes or the output shape (its ``info`` and training targets).
    """
    info = dataset.info
    if model.unit == "linear":
        unit_options = {"complex_state": model.complex_state, "train_step": model.train_step}
    else:
        unit_options = {"train_step": model.train_step, **({} if model.step is None else {"step": model.step})}
    output_step, output_len = 1, None
    if info.task == "classification":
        out_size = info.num_classes
    else:
        out_size = info.output_dim
        stride = getattr(info, "target_stride", 1)
        output_step = stride if model.output_step is None else model.output_step
        if output_step != stride:
            raise ConfigError(
                f"model.output_step = {output_step} but dataset {info.name!r} has one target every {stride} steps"
            )
        output_len = int(np.shape(dataset.train.targets)[1])
    return {
        "in_size": info.channels,
        "out_size": out_size,
        "task": info.task,
        "hidden": model.hidden,
        "state_size": model.state_size,
        "num_blocks": model.num_blocks,
        "unit": model.unit,
        "unit_options": unit_options,
        "time_channel": model.time_channel,
        "dropout": model.dropout,
        "output_step": output_step,
        "output_len": output_len,
        "remat_ff": model.remat_ff,
    }


def build_model(model: ModelConfig, dataset: Dataset, *, key: PRNGKeyArray) -> tuple[HSSM, eqx.nn.State]:
    """The HSSM for a dataset and its BatchNorm state (built from :func:`hssm_hyperparameters`).

    **Arguments:**

    - `model`: the architecture.
    - `dataset`: gives the channels, the task, the classes or the output shape (its ``info`` and training targets).
    - `key`: the initialisation key (keyword only).
    """
    return eqx.nn.make_with_state(HSSM)(**hssm_hyperparameters(model, dataset), key=key)


def load_dataset(config: TrainConfig, seed: int) -> Dataset:
    """The dataset of ``config.data``, split with ``seed``."""
    return load(config.data.name, data_dir=config.data.data_dir, seed=seed, **config.data.options)


def check_finite(dataset: Dataset) -> None:
    """Raise :class:`NonFiniteError` naming the split, array and first sample holding a NaN or an infinity."""
    for split_name in ("train", "val", "test"):
        split = getattr(dataset, split_name)
        for array_name in ("inputs", "targets"):
            array = np.asarray(getattr(split, array_name))
            if not np.issubdtype(array.dtype, np.floating):
                continue
            bad = ~np.isfinite(array.reshape(array.shape[0], -1))
            if bad.any():
                rows = np.flatnonzero(bad.any(axis=1))
                raise NonFiniteError(
                    f"{split_name} {array_name} of dataset {dataset.info.name!r} hold {int(bad.sum())} non-finite "
                    f"value(s) in {rows.size} sample(s), the first at sample {int(rows[0])}; refusing to train on it"
                )


def split_arrays(split: Split, dtype: np.dtype) -> SplitArrays:
    """A split's inputs (and floating targets) in ``dtype``, targets and boolean mask as NumPy arrays."""
    inputs = np.asarray(split.inputs, dtype=dtype)
    targets = np.asarray(split.targets)
    if np.issubdtype(targets.dtype, np.floating):
        targets = targets.astype(dtype)
    mask = None if split.mask is None else np.asarray(split.mask, dtype=bool)
    return inputs, targets, mask


class BatchOrder:
    """The training batches as a function of the step: epoch ``e`` is ``permutation(fold_in(key, e))``."""

    def __init__(self, key: PRNGKeyArray, num_examples: int, batch_size: int):
        self.key = key
        self.num_examples = num_examples
        self.batch_size = min(batch_size, num_examples)
        self.batches_per_epoch = num_examples // self.batch_size
        self._epoch, self._perm = -1, None

    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, batch within the epoch)`` of a 0-based step."""
        return divmod(step, self.batches_per_epoch)

    def indices(self, step: int) -> np.ndarray:
        """The training examples of a 0-based step."""
        epoch, i = self.position(step)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.asarray(jax.random.permutation(jax.random.fold_in(self.key, epoch), self.num_examples))
        return self._perm[i * self.batch_size : (i + 1) * self.batch_size]


# ---------------------------------------------------------------------------------------------- steps


def make_train_step(
    optimizer: optax.GradientTransformation, gradient: AbstractGradient, loss_scale: float = 1.0
) -> TrainStep:
    """The jitted step ``(model, state, opt_state, x, y, mask, key) -> (model, state, opt_state, loss, metric,
    finite)``, where ``finite`` says whether every gradient entry was finite (the caller must not keep an update made
    from a non-finite gradient: an exploding gradient can overflow while the loss stays finite).

    **Arguments:**

    - `optimizer`: the optax transformation (see :func:`make_optimizer`).
    - `gradient`: the gradient method object (see :func:`rhel.gradients.methods.make_gradient`).
    - `loss_scale`: multiplies the loss before differentiation and divides the gradients after it; see
      :class:`rhel.training.config.GradientConfig` for what it does (nothing) to the RHEL nudge.
    """

    def scaled_loss(model, state, x, y, mask, key):
        loss, (metric, state) = batch_loss(model, state, x, y, key=key, gradient=gradient, mask=mask)
        return loss * loss_scale, (loss, metric, state)

    @eqx.filter_jit
    def step(model, state, opt_state, x, y, mask, key):
        grads, (loss, metric, state) = eqx.filter_grad(scaled_loss, has_aux=True)(model, state, x, y, mask, key)
        if loss_scale != 1.0:
            grads = jax.tree.map(lambda g: g / loss_scale, grads)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return eqx.apply_updates(model, updates), state, opt_state, loss, metric, tree_all_finite(grads)

    return step


@functools.lru_cache(maxsize=16)
def _cached_train_step(
    optim: OptimConfig,
    method: str,
    epsilon: float | None,
    relative: bool,
    loss_scale: float,
    resync_every: int | None,
) -> TrainStep:
    # One jitted step per (optimiser, method) settings: runs that differ only in seed, data or model shapes reuse
    # its compilation cache (a fresh closure per run would recompile every time).
    return make_train_step(make_optimizer(optim), make_gradient(method, epsilon, relative, resync_every), loss_scale)


def train_step_for(config: TrainConfig) -> TrainStep:
    """The (cached) jitted training step of a single-run config."""
    optim, gradient = config.optim, config.gradient
    # only the optimiser's own settings key the cache (not eval_every, patience, batch sizes, or steps when unused)
    optim_key = dataclasses.replace(
        OptimConfig(),
        lr=optim.lr,
        schedule=optim.schedule,
        warmup_steps=optim.warmup_steps,
        steps=optim.steps if optim.schedule != "constant" else OptimConfig().steps,
    )
    return _cached_train_step(
        optim_key,
        gradient.methods[0],
        gradient.epsilon,
        gradient.relative_epsilon,
        gradient.loss_scale,
        gradient.resync_every,
    )


@eqx.filter_jit
def _eval_batch(model, state, x, y, mask, valid):
    predictions, _ = apply_batch(model, state, x, mask=mask)
    losses = jax.vmap(model.head.loss)(predictions, y)
    metrics = jax.vmap(model.head.metric)(predictions, y)
    return jnp.sum(losses * valid), jnp.sum(metrics * valid)


def evaluate(model: HSSM, state: eqx.nn.State, arrays: SplitArrays, batch_size: int) -> tuple[float, float]:
    """Mean loss and metric over a split, in inference mode (dropout off, BatchNorm running statistics).

    The last batch is padded to ``batch_size`` (padding weighted 0) so that one compiled function serves all.
    """
    inputs, targets, mask = arrays
    n = inputs.shape[0]
    batch_size = min(batch_size, n)
    model = eqx.nn.inference_mode(model)
    total_loss = total_metric = 0.0
    for start in range(0, n, batch_size):
        idx = np.arange(start, start + batch_size)
        valid = (idx < n).astype(inputs.dtype)
        idx = np.minimum(idx, n - 1)
        loss, metric = _eval_batch(model, state, inputs[idx], targets[idx], None if mask is None else mask[idx], valid)
        total_loss += float(loss)
        total_metric += float(metric)
    return total_loss / n, total_metric / n
