"""The training loop: one run = one dataset × model × gradient method × seed.

Every random choice comes from the seed: ``jax.random.PRNGKey(seed)`` is split into an initialisation key, a
data-order key (epoch ``e`` visits the training set in the order ``permutation(fold_in(data_key, e))``) and a dropout
key (step ``s`` uses ``fold_in(dropout_key, s)``). The batch and the dropout mask of a step are therefore functions
of the step number alone, which is what makes a resumed run reach the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rhel.models import HSSM, apply_batch, batch_loss
from rhel.training.checkpoints import atomic_serialise, atomic_write_text, load_checkpoint, save_checkpoint
from rhel.training.config import ConfigError, ModelConfig, OptimConfig, TrainConfig, config_to_dict, make_gradient

METRICS_FILE = "metrics.jsonl"
FINAL_FILE = "final.json"
CONFIG_FILE = "config.json"
ENVIRONMENT_FILE = "environment.json"
BEST_MODEL_FILE = "best_model.eqx"


class NonFiniteError(FloatingPointError):
    """A NaN or an infinity in the data or in the training loss."""


@dataclass(frozen=True)
class RunResult:
    """What a run ended with; ``test_metric`` is taken at the best validation evaluation."""

    run_dir: Path
    status: str  # "completed" | "early_stopping" | "interrupted"
    step: int
    metric: str
    best_step: int
    best_val_metric: float
    test_metric: float
    wall_s: float


# ---------------------------------------------------------------------------------------------- set-up


def environment_info() -> dict[str, Any]:
    """Versions, devices and precision, saved with every run."""
    from importlib.metadata import PackageNotFoundError, version

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


def run_name(config: TrainConfig) -> str:
    """``<dataset>-<unit>-<method>-seed<seed>`` for a single-run config."""
    dataset = Path(config.data.name).stem if ("/" in config.data.name) else config.data.name
    return f"{dataset}-{config.model.unit}-{config.gradient.methods[0]}-seed{config.seeds[0]}"


def make_optimizer(optim: OptimConfig) -> optax.GradientTransformation:
    """Adam with the configured (by default constant) learning rate."""
    if optim.schedule == "constant":
        lr = optim.lr
    elif optim.schedule == "cosine":
        lr = optax.cosine_decay_schedule(optim.lr, optim.steps)
    else:
        lr = optax.warmup_cosine_decay_schedule(0.0, optim.lr, optim.warmup_steps, optim.steps)
    return optax.adam(lr)


def build_model(model: ModelConfig, dataset: Any, *, key) -> tuple[HSSM, eqx.nn.State]:
    """The HSSM for a dataset (channels, task, classes / output shape from its ``info`` and targets) and its
    BatchNorm state."""
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
    return eqx.nn.make_with_state(HSSM)(
        info.channels,
        out_size,
        task=info.task,
        hidden=model.hidden,
        state_size=model.state_size,
        num_blocks=model.num_blocks,
        unit=model.unit,
        unit_options=unit_options,
        time_channel=model.time_channel,
        dropout=model.dropout,
        output_step=output_step,
        output_len=output_len,
        remat_ff=model.remat_ff,
        key=key,
    )


def load_dataset(config: TrainConfig, seed: int):
    from rhel.data import load

    return load(config.data.name, data_dir=config.data.data_dir, seed=seed, **config.data.options)


def check_finite(dataset: Any) -> None:
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


def _arrays(split: Any, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    inputs = np.asarray(split.inputs, dtype=dtype)
    targets = np.asarray(split.targets)
    if np.issubdtype(targets.dtype, np.floating):
        targets = targets.astype(dtype)
    mask = None if split.mask is None else np.asarray(split.mask, dtype=bool)
    return inputs, targets, mask


class BatchOrder:
    """The training batches as a function of the step: epoch ``e`` is ``permutation(fold_in(key, e))``."""

    def __init__(self, key, num_examples: int, batch_size: int):
        self.key = key
        self.num_examples = num_examples
        self.batch_size = min(batch_size, num_examples)
        self.batches_per_epoch = num_examples // self.batch_size
        self._epoch, self._perm = -1, None

    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, batch within the epoch)`` of a 0-based step."""
        return divmod(step, self.batches_per_epoch)

    def indices(self, step: int) -> np.ndarray:
        epoch, i = self.position(step)
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.asarray(jax.random.permutation(jax.random.fold_in(self.key, epoch), self.num_examples))
        return self._perm[i * self.batch_size : (i + 1) * self.batch_size]


# ---------------------------------------------------------------------------------------------- steps


def make_train_step(optimizer: optax.GradientTransformation, gradient: Any, loss_scale: float = 1.0):
    """The jitted step ``(model, state, opt_state, x, y, mask, key) -> (model, state, opt_state, loss, metric)``.

    ``loss_scale`` multiplies the loss before differentiation and divides the gradients after it; see
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
        return eqx.apply_updates(model, updates), state, opt_state, loss, metric

    return step


@functools.lru_cache(maxsize=16)
def _cached_train_step(optim: OptimConfig, method: str, epsilon: float | None, relative: bool, loss_scale: float):
    # One jitted step per (optimiser, method) settings: runs that differ only in seed, data or model shapes reuse
    # its compilation cache (a fresh closure per run would recompile every time).
    return make_train_step(make_optimizer(optim), make_gradient(method, epsilon, relative), loss_scale)


@eqx.filter_jit
def _eval_batch(model, state, x, y, mask, valid):
    predictions, _ = apply_batch(model, state, x, mask=mask)
    losses = jax.vmap(model.head.loss)(predictions, y)
    metrics = jax.vmap(model.head.metric)(predictions, y)
    return jnp.sum(losses * valid), jnp.sum(metrics * valid)


def evaluate(model: HSSM, state: eqx.nn.State, arrays, batch_size: int) -> tuple[float, float]:
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


# ---------------------------------------------------------------------------------------------- the run


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the log lines written after the checkpoint a run resumes from."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def train_run(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    dataset: Any = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
) -> RunResult:
    """Train one single-run config (one seed, one gradient method) and write its run directory.

    **Arguments:**

    - `config`: a validated single-run :class:`TrainConfig` (see :func:`rhel.training.config.expand`).
    - `run_dir`: where ``config.json``, ``environment.json``, ``metrics.jsonl``, the checkpoint, the best model and
      ``final.json`` go.
    - `dataset`: a ``rhel.data.Dataset`` to use instead of loading ``config.data``.
    - `resume`: continue from the run directory's checkpoint (if any) instead of starting afresh.
    - `progress`: show a tqdm progress bar.
    - `stop_after`: stop (as if killed) once this step is reached, leaving the checkpoint; for tests.

    **Raises:** :class:`NonFiniteError` for a NaN/infinity in the data (before any step) or in the training loss
    (naming the step; the last good checkpoint is kept).
    """
    config.validate()
    if len(config.seeds) != 1 or len(config.gradient.methods) != 1:
        raise ValueError("train_run takes a single-run config; use rhel.training.config.expand")
    if config.float64 and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    seed, method, optim = config.seeds[0], config.gradient.methods[0], config.optim
    dtype = np.dtype(jnp.zeros(()).dtype)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    if dataset is None:
        dataset = load_dataset(config, seed)
    check_finite(dataset)
    info = dataset.info
    train_arrays = _arrays(dataset.train, dtype)
    val_arrays = _arrays(dataset.val, dtype)
    test_arrays = _arrays(dataset.test, dtype)

    init_key, data_key, dropout_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    model, state = build_model(config.model, dataset, key=init_key)
    optimizer = make_optimizer(optim)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    gradient = config.gradient
    # only the optimiser's own settings key the cache (not eval_every, patience, batch sizes, or steps when unused)
    optim_key = dataclasses.replace(
        OptimConfig(),
        lr=optim.lr,
        schedule=optim.schedule,
        warmup_steps=optim.warmup_steps,
        steps=optim.steps if optim.schedule != "constant" else OptimConfig().steps,
    )
    train_step = _cached_train_step(optim_key, method, gradient.epsilon, gradient.relative_epsilon, gradient.loss_scale)
    order = BatchOrder(data_key, train_arrays[0].shape[0], optim.batch_size)
    higher_is_better = model.head.higher_is_better
    metric_name = model.head.metric_name

    metrics_path = run_dir / METRICS_FILE
    step, wall_before = 0, 0.0
    best = {"step": 0, "val_metric": None, "val_loss": None, "test_metric": None, "test_loss": None}
    evals_since_best = 0
    checkpoint = load_checkpoint(run_dir, (model, state, opt_state)) if resume else None
    if checkpoint is not None:
        (model, state, opt_state), meta = checkpoint
        if meta["config"] != config_to_dict(config):
            raise ValueError(f"{run_dir} holds a checkpoint of a different config; resume with the same settings")
        step, best, evals_since_best, wall_before = meta["step"], meta["best"], meta["evals_since_best"], meta["wall_s"]
        _truncate_metrics(metrics_path, step)
    else:
        for stale in (metrics_path, run_dir / FINAL_FILE, run_dir / "checkpoint.json", run_dir / BEST_MODEL_FILE):
            stale.unlink(missing_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, json.dumps(config_to_dict(config), indent=2) + "\n")
    atomic_write_text(run_dir / ENVIRONMENT_FILE, json.dumps(environment_info(), indent=2) + "\n")

    def improved(value: float) -> bool:
        if best["val_metric"] is None:
            return True
        return value > best["val_metric"] if higher_is_better else value < best["val_metric"]

    from tqdm.auto import tqdm

    bar = tqdm(
        total=optim.steps, initial=step, disable=not progress, desc=run_name(config), dynamic_ncols=True, leave=False
    )
    started = time.perf_counter()
    status = "completed"
    train_losses: list[float] = []
    train_metrics: list[float] = []
    try:
        while step < optim.steps:
            idx = order.indices(step)
            x, y, mask = train_arrays[0][idx], train_arrays[1][idx], None
            if train_arrays[2] is not None:
                mask = train_arrays[2][idx]
            new = train_step(model, state, opt_state, x, y, mask, jax.random.fold_in(dropout_key, step))
            loss, metric = float(new[3]), float(new[4])
            if not math.isfinite(loss):
                _append(metrics_path, {"step": step + 1, "event": "non_finite_loss", "loss": repr(loss)})
                last = _checkpoint_step(run_dir)
                kept = (
                    "no checkpoint was written yet"
                    if last is None
                    else (f"the last good checkpoint (step {last}) is kept in {run_dir}")
                )
                raise NonFiniteError(
                    f"training loss is {loss} at step {step + 1} ({method}, seed {seed}); stopping. {kept}. "
                    "Try --float64, a smaller learning rate or another epsilon."
                )
            model, state, opt_state = new[0], new[1], new[2]
            step += 1
            train_losses.append(loss)
            train_metrics.append(metric)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", best_val=best["val_metric"], refresh=False)

            if step % optim.eval_every == 0 or step == optim.steps:
                val_loss, val_metric = evaluate(model, state, val_arrays, optim.eval_batch_size)
                record = {
                    "step": step,
                    "epoch": order.position(step - 1)[0],
                    "train_loss": float(np.mean(train_losses)),
                    f"train_{metric_name}": float(np.mean(train_metrics)),
                    "val_loss": val_loss,
                    f"val_{metric_name}": val_metric,
                }
                train_losses, train_metrics = [], []
                if improved(val_metric):
                    test_loss, test_metric = evaluate(model, state, test_arrays, optim.eval_batch_size)
                    best = {
                        "step": step,
                        "val_metric": val_metric,
                        "val_loss": val_loss,
                        "test_metric": test_metric,
                        "test_loss": test_loss,
                    }
                    evals_since_best = 0
                    record.update(test_loss=test_loss, **{f"test_{metric_name}": test_metric})
                    atomic_serialise(run_dir / BEST_MODEL_FILE, (model, state))
                else:
                    evals_since_best += 1
                record.update(best_step=best["step"], **{f"best_val_{metric_name}": best["val_metric"]})
                record["elapsed_s"] = wall_before + time.perf_counter() - started
                _append(metrics_path, record)
                save_checkpoint(
                    run_dir,
                    step,
                    (model, state, opt_state),
                    {
                        "config": config_to_dict(config),
                        "seed": seed,
                        "key": [int(k) for k in np.asarray(jax.random.PRNGKey(seed))],
                        "epoch": order.position(step)[0],
                        "batch_in_epoch": order.position(step)[1],
                        "best": best,
                        "evals_since_best": evals_since_best,
                        "wall_s": record["elapsed_s"],
                    },
                )
                bar.set_postfix(loss=f"{loss:.4f}", **{f"val_{metric_name}": f"{val_metric:.4f}"})
                if optim.patience and evals_since_best > optim.patience:
                    status = "early_stopping"
                    break
            if stop_after is not None and step >= stop_after and step < optim.steps:
                status = "interrupted"
                break
    finally:
        bar.close()

    wall = wall_before + time.perf_counter() - started
    result = RunResult(
        run_dir=run_dir,
        status=status,
        step=step,
        metric=metric_name,
        best_step=best["step"],
        best_val_metric=best["val_metric"],
        test_metric=best["test_metric"],
        wall_s=wall,
    )
    if status != "interrupted":
        final = {
            "name": config.name,
            "dataset": info.name,
            "task": info.task,
            "num_classes": info.num_classes if info.task == "classification" else None,
            "unit": config.model.unit,
            "gradient": method,
            "seed": seed,
            "metric": metric_name,
            "higher_is_better": higher_is_better,
            **{k: v for k, v in dataclasses.asdict(result).items() if k not in ("run_dir", "metric")},
            "test_loss": best["test_loss"],
            "val_loss": best["val_loss"],
        }
        atomic_write_text(run_dir / FINAL_FILE, json.dumps(final, indent=2) + "\n")
    return result


def _checkpoint_step(run_dir: Path) -> int | None:
    sidecar = run_dir / "checkpoint.json"
    return json.loads(sidecar.read_text())["step"] if sidecar.is_file() else None
