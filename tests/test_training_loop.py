"""The training loop: resume equals an uninterrupted run, non-finite data and losses are reported clearly."""

from __future__ import annotations

import dataclasses
import json

import equinox as eqx
import jax
import numpy as np
import pytest

from rhel.data import load
from rhel.training.checkpoints import load_checkpoint
from rhel.training.config import DataConfig, GradientConfig, ModelConfig, OptimConfig, TrainConfig
from rhel.training.experiment import BatchOrder, NonFiniteError, build_model, make_optimizer
from rhel.training.loop import BEST_MODEL_FILE, FINAL_FILE, METRICS_FILE, train_run


def tiny_dataset(name="long_range_pattern", **options):
    defaults = dict(length=16, n_train=48, n_val=24, n_test=24)
    if name == "long_range_pattern":
        defaults.update(burst=4, window=0.5)
    return load(name, seed=0, **{**defaults, **options})


def small_config(method="rhel", steps=12, eval_every=4, **optim):
    return TrainConfig(
        name="test",
        seeds=(3,),
        data=DataConfig(name="tiny"),
        model=ModelConfig(num_blocks=1, hidden=8, state_size=4, dropout=0.1),
        optim=OptimConfig(lr=1e-2, batch_size=8, steps=steps, eval_every=eval_every, **{"patience": 0, **optim}),
        gradient=GradientConfig(methods=(method,)),
    )


def _metric_records(path):
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]


def test_resume_equals_uninterrupted(tmp_path):
    method = "rhel"
    dataset = tiny_dataset()
    config = small_config(method)
    full = train_run(config, tmp_path / "full", dataset=dataset, progress=False)
    killed = train_run(config, tmp_path / "resumed", dataset=dataset, progress=False, stop_after=6)
    assert killed.status == "interrupted" and killed.step == 6
    # the "kill" happened after step 6 but the checkpoint is from step 4: steps 5-6 are redone on resume
    assert json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())["step"] == 4
    assert not (tmp_path / "resumed" / FINAL_FILE).exists()
    resumed = train_run(config, tmp_path / "resumed", dataset=dataset, progress=False, resume=True)
    assert resumed.status == full.status == "completed" and resumed.step == full.step == 12
    assert resumed.test_metric == full.test_metric and resumed.best_step == full.best_step
    assert _metric_records(tmp_path / "full" / METRICS_FILE) == _metric_records(tmp_path / "resumed" / METRICS_FILE)
    # final parameters, BatchNorm statistics and Adam moments are bit-identical
    template = eqx.filter_eval_shape(lambda: _template(config, dataset))
    a, _ = load_checkpoint(tmp_path / "full", template)
    b, _ = load_checkpoint(tmp_path / "resumed", template)
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 10
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    final = json.loads((tmp_path / "resumed" / FINAL_FILE).read_text())
    assert final["seed"] == 3 and final["gradient"] == method and final["step"] == 12
    assert (tmp_path / "resumed" / BEST_MODEL_FILE).is_file()


def _template(config, dataset):
    model, state = build_model(config.model, dataset, key=jax.random.PRNGKey(0))
    return model, state, make_optimizer(config.optim).init(eqx.filter(model, eqx.is_inexact_array))


def test_nan_in_training_data_is_reported_before_training(tmp_path):
    dataset = tiny_dataset()
    dataset.train.inputs[17, 5, 1] = np.nan
    with pytest.raises(NonFiniteError, match=r"train inputs .* 1 non-finite value\(s\) .* first at sample 17"):
        train_run(small_config(), tmp_path / "run", dataset=dataset, progress=False)
    assert not (tmp_path / "run" / METRICS_FILE).exists()


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    dataset = tiny_dataset("copy_memory", n_copy=2, n_symbols=3)
    config = small_config(steps=12, eval_every=4)
    # a target of 1e200 squares to an infinite loss (float64) at the first step whose batch holds that sample:
    # step 6, the last batch of the first epoch (48 samples, batches of 8), after the checkpoint of step 4
    order = BatchOrder(jax.random.split(jax.random.PRNGKey(config.seeds[0]), 3)[1], 48, 8)
    sample = int(order.indices(5)[0])
    targets = dataset.train.targets.astype(np.float64)
    targets[sample, 0, 0] = 1e200
    dataset = dataclasses.replace(dataset, train=dataclasses.replace(dataset.train, targets=targets))
    with pytest.raises(NonFiniteError, match=r"training loss is inf at step 6 .*last good checkpoint \(step 4\)"):
        train_run(config, tmp_path / "run", dataset=dataset, progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert [r["step"] for r in lines] == [4, 6] and lines[-1] == {"step": 6, "event": "non_finite_loss", "loss": "inf"}
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["step"] == 4
    template = eqx.filter_eval_shape(lambda: _template(config, dataset))
    (model, _, _), _ = load_checkpoint(tmp_path / "run", template)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(eqx.filter(model, eqx.is_array)))


def test_non_finite_gradient_of_a_finite_loss_stops_before_the_update_is_kept(tmp_path, monkeypatch):
    # an exploding gradient overflows while the loss stays finite (the nonlinear bench model: BPTT's float32 gradient
    # is NaN at 49,920 steps, its loss finite); the step reports it and the loop stops instead of keeping the update
    import rhel.training.loop as loop

    real = loop.train_step_for
    seen = []

    def step_for(config):
        step = real(config)

        def patched(*args):
            out = step(*args)
            seen.append(bool(out[5]))
            return (*out[:5], out[5] & (len(seen) != 6))  # step 6's gradient "overflows"

        return patched

    monkeypatch.setattr(loop, "train_step_for", step_for)
    with pytest.raises(NonFiniteError, match=r"the loss gradient is not finite \(loss [0-9.]+\) at step 6 .*last good "
                       r"checkpoint \(step 4\).*exploding gradient"):  # fmt: skip
        train_run(small_config(steps=12, eval_every=4), tmp_path / "run", dataset=tiny_dataset(), progress=False)
    assert seen == [True] * 6  # the real steps' gradients were finite
    lines = [json.loads(x) for x in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert lines[-1]["step"] == 6 and lines[-1]["event"] == "non_finite_gradient"
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["step"] == 4
    assert not (tmp_path / "run" / FINAL_FILE).exists()


def test_regression_task_and_early_stopping(tmp_path):
    dataset = tiny_dataset("copy_memory", n_copy=2, n_symbols=3)
    config = small_config(steps=60, eval_every=1, patience=2)
    result = train_run(config, tmp_path / "run", dataset=dataset, progress=False)
    records = [json.loads(x) for x in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    assert result.metric == "mse" and all("val_mse" in r for r in records)
    assert result.status == "early_stopping", result
    assert result.step - result.best_step == 3  # stopped after more than `patience` evaluations without gain
    assert len(records) == result.step
    best = min(records, key=lambda r: r["val_mse"])
    assert best["step"] == result.best_step and best["test_mse"] == result.test_metric
    assert 0.0 < result.test_metric < 0.5
