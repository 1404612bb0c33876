"""The training loop: one run = one dataset × model × gradient method × seed, with checkpoints and resume.

Every random choice comes from the seed: ``jax.random.PRNGKey(seed)`` is split into an initialisation key, a
data-order key (epoch ``e`` visits the training set in the order ``permutation(fold_in(data_key, e))``) and a dropout
key (step ``s`` uses ``fold_in(dropout_key, s)``). The batch and the dropout mask of a step are therefore functions
of the step number alone, which is what makes a resumed run reach the same parameters as an uninterrupted one.

:func:`train_run` is three steps around the optimiser loop: :func:`_start` (resume from the checkpoint or start
afresh), :func:`_evaluate_and_checkpoint` (every ``eval_every`` steps) and :func:`_write_final`. What a run is made
of (model, data, optimiser, training step) is assembled in :mod:`rhel.training.experiment`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rhel.data.core import Dataset, DatasetInfo
from rhel.models import HSSM
from rhel.training.artifacts import save_model
from rhel.training.checkpoints import SIDECAR, atomic_write_text, load_checkpoint, save_checkpoint
from rhel.training.config import TrainConfig, config_to_dict
from rhel.training.distributed import DataParallel
from rhel.training.experiment import (
    BatchOrder,
    NonFiniteError,
    SplitArrays,
    build_model,
    check_finite,
    environment_info,
    evaluate,
    hssm_hyperparameters,
    load_dataset,
    make_optimizer,
    run_name,
    split_arrays,
    train_step_for,
)
from rhel.training.faults import FINAL_FILE, RunInterrupted, clamp_batch_size, holds_run_lock, refuse_finished
from rhel.training.logs import Callback, LogLines, provenance

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
ENVIRONMENT_FILE = "environment.json"
BEST_MODEL_FILE = "best_model.eqx"

__all__ = ["NonFiniteError", "RunResult", "train_run"]


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


@dataclass
class _Progress:
    """What a checkpoint carries besides the arrays: the step, the best evaluation so far and the wall time."""

    step: int = 0
    best: dict[str, Any] = field(
        default_factory=lambda: {
            "step": 0,
            "val_metric": None,
            "val_loss": None,
            "test_metric": None,
            "test_loss": None,
        }
    )
    evals_since_best: int = 0
    wall_before: float = 0.0


# ---------------------------------------------------------------------------------------------- files


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the log lines written after the checkpoint a run resumes from."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _checkpoint_step(run_dir: Path) -> int | None:
    sidecar = run_dir / SIDECAR
    return json.loads(sidecar.read_text())["step"] if sidecar.is_file() else None


# ---------------------------------------------------------------------------------------------- the steps of a run


def _start(
    run_dir: Path,
    config: TrainConfig,
    arrays: tuple[HSSM, eqx.nn.State, optax.OptState],
    *,
    resume: bool,
    writer: bool = True,
    overwrite: bool = False,
) -> tuple[tuple[HSSM, eqx.nn.State, optax.OptState], _Progress]:
    """Resume from the run directory's checkpoint (``resume`` and one exists) or clear its stale files (a finished
    run only when ``overwrite``); write the config and the environment. Returns the model, state and optimiser state
    to continue from, and the progress. Only a ``writer`` (process 0 of a distributed run) changes files; the others
    only read the checkpoint."""
    refuse_finished(run_dir, resume=resume, overwrite=overwrite)
    progress = _Progress()
    metrics_path = run_dir / METRICS_FILE
    checkpoint = load_checkpoint(run_dir, arrays) if resume else None
    if checkpoint is not None:
        arrays, meta = checkpoint
        if meta["config"] != config_to_dict(config):
            raise ValueError(f"{run_dir} holds a checkpoint of a different config; resume with the same settings")
        progress = _Progress(meta["step"], meta["best"], meta["evals_since_best"], meta["wall_s"])
        if writer:
            _truncate_metrics(metrics_path, progress.step)
    elif not writer:
        return arrays, progress
    else:
        for stale in (metrics_path, run_dir / FINAL_FILE, run_dir / SIDECAR, run_dir / BEST_MODEL_FILE):
            stale.unlink(missing_ok=True)
    if writer:
        atomic_write_text(run_dir / CONFIG_FILE, json.dumps(config_to_dict(config), indent=2) + "\n")
        environment = {**environment_info(), **provenance()}
        atomic_write_text(run_dir / ENVIRONMENT_FILE, json.dumps(environment, indent=2) + "\n")
    return arrays, progress


def _evaluate_and_checkpoint(
    run_dir: Path,
    config: TrainConfig,
    progress: _Progress,
    arrays: tuple[HSSM, eqx.nn.State, optax.OptState],
    *,
    val: SplitArrays,
    test: SplitArrays,
    order: BatchOrder,
    train_losses: list[float],
    train_metrics: list[float],
    elapsed: Callable[[], float],
    save_best: Callable[[HSSM, eqx.nn.State], Any],
    writer: bool = True,
    callbacks: Sequence[Callback] = (),
) -> float:
    """Evaluate on the validation split (and on the test split when it improved, saving the best model), append
    the record to ``metrics.jsonl`` and write the checkpoint. Updates ``progress``; returns the validation metric.
    Every process evaluates (so that early stopping agrees); only a ``writer`` writes.

    ``elapsed()`` is the run's wall time so far (resumed runs included), read when the record is complete;
    ``save_best(model, state)`` writes the best model file; each of ``callbacks`` is called with the record.
    """
    model, state, _ = arrays
    step, batch_size = progress.step, config.optim.eval_batch_size
    metric_name = model.head.metric_name
    best_val = progress.best["val_metric"]
    val_loss, val_metric = evaluate(model, state, val, batch_size)
    record = {
        "step": step,
        "epoch": order.position(step - 1)[0],
        "train_loss": float(np.mean(train_losses)),
        f"train_{metric_name}": float(np.mean(train_metrics)),
        "val_loss": val_loss,
        f"val_{metric_name}": val_metric,
    }
    improved = best_val is None or (val_metric > best_val if model.head.higher_is_better else val_metric < best_val)
    if improved:
        test_loss, test_metric = evaluate(model, state, test, batch_size)
        progress.best = {
            "step": step,
            "val_metric": val_metric,
            "val_loss": val_loss,
            "test_metric": test_metric,
            "test_loss": test_loss,
        }
        progress.evals_since_best = 0
        record.update(test_loss=test_loss, **{f"test_{metric_name}": test_metric})
        if writer:
            save_best(model, state)
    else:
        progress.evals_since_best += 1
    record.update(best_step=progress.best["step"], **{f"best_val_{metric_name}": progress.best["val_metric"]})
    record["elapsed_s"] = elapsed()
    if not writer:
        return val_metric
    _append(run_dir / METRICS_FILE, record)
    for callback in callbacks:
        callback(dict(record))
    seed = config.seeds[0]
    save_checkpoint(
        run_dir,
        step,
        arrays,
        {
            "config": config_to_dict(config),
            "seed": seed,
            "key": [int(k) for k in np.asarray(jax.random.PRNGKey(seed))],
            "epoch": order.position(step)[0],
            "batch_in_epoch": order.position(step)[1],
            "best": progress.best,
            "evals_since_best": progress.evals_since_best,
            "wall_s": record["elapsed_s"],
        },
    )
    return val_metric


def _write_final(
    run_dir: Path, config: TrainConfig, info: DatasetInfo, result: RunResult, model: HSSM, best: dict[str, Any]
) -> None:
    """Write ``final.json``: the run's identity and its result at the best validation evaluation."""
    final = {
        "name": config.name,
        "dataset": info.name,
        "task": info.task,
        "num_classes": info.num_classes if info.task == "classification" else None,
        "unit": config.model.unit,
        "gradient": config.gradient.methods[0],
        "seed": config.seeds[0],
        "metric": result.metric,
        "higher_is_better": model.head.higher_is_better,
        **{k: v for k, v in dataclasses.asdict(result).items() if k not in ("run_dir", "metric")},
        "test_loss": best["test_loss"],
        "val_loss": best["val_loss"],
    }
    atomic_write_text(run_dir / FINAL_FILE, json.dumps(final, indent=2) + "\n")


def _non_finite(run_dir: Path, config: TrainConfig, step: int, loss: float, gradient: bool = False) -> NonFiniteError:
    """Log a non-finite training loss (or, with ``gradient``, a non-finite gradient of a finite loss) at ``step`` and
    return the error to raise (naming the kept checkpoint)."""
    event = "non_finite_gradient" if gradient else "non_finite_loss"
    _append(run_dir / METRICS_FILE, {"step": step, "event": event, "loss": repr(loss)})
    last = _checkpoint_step(run_dir)
    kept = (
        "no checkpoint was written yet"
        if last is None
        else f"the last good checkpoint (step {last}) is kept in {run_dir}"
    )
    what = f"the loss gradient is not finite (loss {loss:.6g})" if gradient else f"training loss is {loss}"
    hint = " (an exploding gradient: shorter sequences, e.g. data.options.frame, or a smaller model.step)"
    return NonFiniteError(
        f"{what} at step {step} ({config.gradient.methods[0]}, seed {config.seeds[0]}); stopping. "
        f"{kept}. Try --float64, a smaller learning rate or another epsilon{hint if gradient else ''}."
    )


# ---------------------------------------------------------------------------------------------- the run


@holds_run_lock
def train_run(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    devices: int | Sequence[jax.Device] | None = None,
    callbacks: Sequence[Callback] = (),
) -> RunResult:
    """Train one single-run config (one seed, one gradient method) and write its run directory.

    **Arguments:**

    - `config`: a validated single-run :class:`TrainConfig` (see :func:`rhel.training.config.expand`).
    - `run_dir`: where ``config.json``, ``environment.json``, ``metrics.jsonl``, the checkpoint, the best model and
      ``final.json`` go.
    - `dataset`: a ``rhel.data.Dataset`` to use instead of loading ``config.data``.
    - `resume`: continue from the run directory's checkpoint (if any) instead of starting afresh.
    - `overwrite`: replace a finished run in `run_dir` (without it, or `resume`, a finished run is refused).
    - `progress`: show a tqdm progress bar when stderr is a terminal; otherwise (or with ``False``) print one
      line per evaluation (:class:`rhel.training.logs.LogLines`).
    - `stop_after`: stop (as if killed) once this step is reached, leaving the checkpoint; for tests.
    - `devices`: data parallelism (:mod:`rhel.training.distributed`): how many of this process's devices share each
      global batch (default: all), or a list of local devices. In a multi-process run (``jax.distributed``) every
      process runs this with the same arguments and only process 0 writes files.
    - `callbacks`: functions called at each evaluation with its metrics record (the dict appended to
      ``metrics.jsonl``: ``step``, ``train_loss``, ``val_<metric>``, ``best_step``, ``elapsed_s``, ...).

    A batch size larger than the training set is clamped to it (with a notice; ``config.json`` holds the value used).
    The run folder is locked while the run owns it (see :mod:`rhel.training.faults`).

    **Raises:** :class:`NonFiniteError` for a NaN/infinity in the data (before any step) or in the training loss
    (naming the step; the last good checkpoint is kept); :class:`~rhel.training.faults.RunLockedError` when
    another process trains into `run_dir`; :class:`~rhel.training.faults.RunExistsError` for a finished run without
    `resume` or `overwrite`; :class:`~rhel.training.checkpoints.CheckpointError` for a corrupt checkpoint on resume;
    :class:`~rhel.training.faults.RunInterrupted` (a ``KeyboardInterrupt``) on Ctrl-C, naming the step.
    """
    from tqdm.auto import tqdm

    config.validate()
    if len(config.seeds) != 1 or len(config.gradient.methods) != 1:
        raise ValueError("train_run takes a single-run config; use rhel.training.config.expand")
    if config.float64 and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
    seed, optim = config.seeds[0], config.optim
    dtype = np.dtype(jnp.zeros(()).dtype)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)  # every process: a non-writer may need it before process 0 makes it

    if dataset is None:
        dataset = load_dataset(config, seed)
    check_finite(dataset)
    config = clamp_batch_size(config, len(dataset.train))
    optim = config.optim
    train_arrays = split_arrays(dataset.train, dtype)
    val_arrays = split_arrays(dataset.val, dtype)
    test_arrays = split_arrays(dataset.test, dtype)

    init_key, data_key, dropout_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    model, state = build_model(config.model, dataset, key=init_key)
    opt_state = make_optimizer(optim).init(eqx.filter(model, eqx.is_inexact_array))
    train_step = train_step_for(config)
    order = BatchOrder(data_key, train_arrays[0].shape[0], optim.batch_size)
    metric_name = model.head.metric_name
    hyperparameters, classes = hssm_hyperparameters(config.model, dataset), dataset.classes

    def save_best(best_model: HSSM, best_state: eqx.nn.State) -> None:
        save_model(
            run_dir / BEST_MODEL_FILE, best_model, best_state, hyperparameters, info=dataset.info, classes=classes
        )

    placement = DataParallel.create(devices)
    placement.check_batch(order.batch_size)
    writer = placement.writer

    (model, state, opt_state), done = _start(
        run_dir, config, (model, state, opt_state), resume=resume, writer=writer, overwrite=overwrite
    )
    model, state, opt_state = placement.replicate((model, state, opt_state))
    progress = progress and sys.stderr.isatty()
    if not progress and writer:
        callbacks = [*callbacks, LogLines(total_steps=optim.steps, prefix=f"{run_name(config)}: ")]
    bar = tqdm(
        total=optim.steps, initial=done.step, disable=not progress, desc=run_name(config), dynamic_ncols=True,
        leave=False,
    )  # fmt: skip
    started = time.perf_counter()
    status = "completed"
    train_losses: list[float] = []
    train_metrics: list[float] = []
    try:
        while done.step < optim.steps:
            idx = order.indices(done.step)
            x, y, mask = train_arrays[0][idx], train_arrays[1][idx], None
            if train_arrays[2] is not None:
                mask = train_arrays[2][idx]
            x, y, mask = placement.shard((x, y, mask))
            key = placement.replicate(jax.random.fold_in(dropout_key, done.step))
            new = train_step(model, state, opt_state, x, y, mask, key)
            loss, metric, finite = float(new[3]), float(new[4]), bool(new[5])
            if not (math.isfinite(loss) and finite):
                if not writer:
                    raise NonFiniteError(f"training loss or gradient is not finite at step {done.step + 1}; process 0 "
                                         "reports it")  # fmt: skip
                raise _non_finite(run_dir, config, done.step + 1, loss, gradient=math.isfinite(loss))
            model, state, opt_state = new[0], new[1], new[2]
            done.step += 1
            train_losses.append(loss)
            train_metrics.append(metric)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", best_val=done.best["val_metric"], refresh=False)

            if done.step % optim.eval_every == 0 or done.step == optim.steps:
                val_metric = _evaluate_and_checkpoint(
                    run_dir, config, done, placement.local((model, state, opt_state)), val=val_arrays,
                    test=test_arrays, order=order, train_losses=train_losses, train_metrics=train_metrics,
                    elapsed=lambda: done.wall_before + time.perf_counter() - started, writer=writer,
                    save_best=save_best, callbacks=callbacks,
                )  # fmt: skip
                train_losses, train_metrics = [], []
                bar.set_postfix(loss=f"{loss:.4f}", **{f"val_{metric_name}": f"{val_metric:.4f}"})
                if optim.patience and done.evals_since_best > optim.patience:
                    status = "early_stopping"
                    break
            if stop_after is not None and done.step >= stop_after and done.step < optim.steps:
                status = "interrupted"
                break
    except KeyboardInterrupt:
        raise RunInterrupted(done.step, run_dir) from None
    finally:
        bar.close()

    result = RunResult(
        run_dir=run_dir,
        status=status,
        step=done.step,
        metric=metric_name,
        best_step=done.best["step"],
        best_val_metric=done.best["val_metric"],
        test_metric=done.best["test_metric"],
        wall_s=done.wall_before + time.perf_counter() - started,
    )
    if status != "interrupted" and writer:
        _write_final(run_dir, config, dataset.info, result, model, done.best)
    return result
