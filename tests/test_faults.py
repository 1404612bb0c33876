"""Runs are never silently wrong and never lost: fault injection on the training loop and its files.

kill -9 mid-run then resume (bit-identical), two processes on one run folder (the second refused, naming the pid),
flipped checkpoint bits and truncated sidecars (refused, naming the file), a full disk during a checkpoint write (the
previous checkpoint intact and resumable), Ctrl-C, a finished run kept unless overwritten, a too-large batch,
corrupt result files, bad HSSM inputs. float64 (conftest): resumed runs are compared bit for bit.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhel.data import load
from rhel.models import HSSM, batch_loss
from rhel.training import checkpoints
from rhel.training.checkpoints import SIDECAR, CheckpointError, load_checkpoint
from rhel.training.config import DataConfig, GradientConfig, ModelConfig, OptimConfig, TrainConfig
from rhel.training.experiment import build_model, make_optimizer
from rhel.training.faults import (
    FAILED_FILE,
    RunExistsError,
    RunInterrupted,
    RunLockedError,
    record_failure,
    run_lock,
)
from rhel.training.loop import FINAL_FILE, METRICS_FILE, train_run
from rhel.training.results import find_runs, read_metrics, write_results

SRC = Path(__file__).resolve().parents[1] / "src"
DATA = dict(length=16, n_train=48, n_val=24, n_test=24, burst=4, window=0.5)


def tiny_dataset(**options):
    return load("long_range_pattern", seed=0, **{**DATA, **options})


def small_config(steps=12, batch_size=8):
    return TrainConfig(
        name="faults",
        seeds=(3,),
        data=DataConfig(name="long_range_pattern", options=DATA),
        model=ModelConfig(num_blocks=1, hidden=8, state_size=4, dropout=0.1),
        optim=OptimConfig(lr=1e-2, batch_size=batch_size, steps=steps, eval_every=4, patience=0),
        gradient=GradientConfig(methods=("rhel",)),
        float64=True,
    )


def _records(run_dir):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in read_metrics(run_dir)]


def _leaves(run_dir, config, dataset):
    def template():
        model, state = build_model(config.model, dataset, key=jax.random.PRNGKey(0))
        return model, state, make_optimizer(config.optim).init(eqx.filter(model, eqx.is_inexact_array))

    tree, meta = load_checkpoint(run_dir, eqx.filter_eval_shape(template))
    return [np.asarray(x) for x in jax.tree.leaves(tree)], meta


def assert_same_run(a, b, config, dataset):
    assert _records(a) == _records(b) and len(_records(a)) == 3
    leaves_a, meta_a = _leaves(a, config, dataset)
    leaves_b, meta_b = _leaves(b, config, dataset)
    assert meta_a["step"] == meta_b["step"] == config.optim.steps and len(leaves_a) > 10
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(x, y)
    final_a, final_b = (json.loads((d / FINAL_FILE).read_text()) for d in (a, b))
    assert final_a["test_metric"] == final_b["test_metric"] and final_a["best_step"] == final_b["best_step"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    dataset, config = tiny_dataset(), small_config()
    run_dir = tmp_path_factory.mktemp("full") / "run"
    train_run(config, run_dir, dataset=dataset, progress=False)
    return run_dir


def _child(script: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow  # the child process compiles the training step afresh
def test_kill_9_mid_run_then_resume_is_bit_identical(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    child = _child(
        f"""
        import sys, time
        import jax
        jax.config.update("jax_enable_x64", True)
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import rhel.training.loop as loop
        from test_faults import small_config, tiny_dataset
        save = loop.save_checkpoint
        def save_then_hang(run_dir, step, pytree, meta):
            path = save(run_dir, step, pytree, meta)
            if step == 8:
                print("checkpointed", flush=True)
                time.sleep(120)
            return path
        loop.save_checkpoint = save_then_hang
        loop.train_run(small_config(), {str(run_dir)!r}, dataset=tiny_dataset(), progress=False)
        """
    )
    try:
        assert child.stdout.readline().strip() == "checkpointed"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        child.kill()
    assert json.loads((run_dir / SIDECAR).read_text())["step"] == 8 and not (run_dir / FINAL_FILE).exists()
    # the kernel released the dead process's lock: resuming is not refused
    result = train_run(small_config(), run_dir, dataset=tiny_dataset(), progress=False, resume=True)
    assert result.status == "completed" and result.step == 12
    assert_same_run(uninterrupted, run_dir, small_config(), tiny_dataset())


def test_second_process_on_a_run_folder_is_refused_naming_the_pid(tmp_path):
    run_dir = tmp_path / "run"
    child = _child(
        f"""
        import time
        from rhel.training.faults import run_lock
        with run_lock({str(run_dir)!r}):
            print("locked", flush=True)
            time.sleep(120)
        """
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"{run_dir} is in use by another rhel process \(pid {child.pid}\)"):
            train_run(small_config(steps=4), run_dir, dataset=tiny_dataset(), progress=False)
        assert not (run_dir / METRICS_FILE).exists()
    finally:
        child.kill()
        child.wait(timeout=30)
    with run_lock(run_dir):  # released when the owner died
        pass


def test_flipped_checkpoint_bits_are_refused_naming_the_file(tmp_path):
    run_dir = tmp_path / "run"
    train_run(small_config(), run_dir, dataset=tiny_dataset(), progress=False, stop_after=4)
    meta = json.loads((run_dir / SIDECAR).read_text())
    assert len(meta["sha256"]) == 64
    path = run_dir / meta["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{path} does not match its sha256 digest in checkpoint.json"):
        train_run(small_config(), run_dir, dataset=tiny_dataset(), progress=False, resume=True)


@pytest.mark.parametrize("which", ["sidecar", "eqx"])
def test_truncated_checkpoint_is_refused_naming_the_file(tmp_path, which):
    run_dir = tmp_path / "run"
    train_run(small_config(), run_dir, dataset=tiny_dataset(), progress=False, stop_after=4)
    meta = json.loads((run_dir / SIDECAR).read_text())
    if which == "eqx":  # an old-style sidecar without a digest: the truncation is still caught while reading
        path = run_dir / meta["file"]
        path.write_bytes(path.read_bytes()[:100])
        (run_dir / SIDECAR).write_text(json.dumps({k: v for k, v in meta.items() if k != "sha256"}))
    else:
        path = run_dir / SIDECAR
        path.write_text(path.read_text()[:40])
    with pytest.raises(CheckpointError, match=rf"{path} is corrupt or truncated"):
        train_run(small_config(), run_dir, dataset=tiny_dataset(), progress=False, resume=True)


def test_disk_full_during_a_checkpoint_keeps_the_previous_one_resumable(tmp_path, uninterrupted, monkeypatch):
    run_dir = tmp_path / "run"
    serialise = checkpoints.eqx.tree_serialise_leaves
    calls = []

    def fill_disk(f, pytree):
        name = getattr(f, "name", "")  # model files serialise into memory first (rhel.training.artifacts)
        calls.append(name)
        if Path(name).name.startswith(".checkpoint-000000008"):
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        serialise(f, pytree)

    monkeypatch.setattr(checkpoints.eqx, "tree_serialise_leaves", fill_disk)
    with pytest.raises(OSError, match=r"No space left on device.*checkpoint-000000008.eqx") as error:
        train_run(small_config(), run_dir, dataset=tiny_dataset(), progress=False)
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(p.name for p in run_dir.glob("*checkpoint-*")) == ["checkpoint-000000004.eqx"]  # no temp left
    assert json.loads((run_dir / SIDECAR).read_text())["step"] == 4
    train_run(small_config(), run_dir, dataset=tiny_dataset(), progress=False, resume=True)
    assert_same_run(uninterrupted, run_dir, small_config(), tiny_dataset())


def test_ctrl_c_names_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    import rhel.training.loop as loop

    run_dir = tmp_path / "run"
    real_order = loop.BatchOrder

    class InterruptAtSix(real_order):
        def indices(self, step):
            if step == 6:
                raise KeyboardInterrupt
            return super().indices(step)

    monkeypatch.setattr(loop, "BatchOrder", InterruptAtSix)
    with pytest.raises(RunInterrupted, match=rf"^interrupted at step 6 in {run_dir}; resume with --resume$") as error:
        train_run(small_config(), run_dir, dataset=tiny_dataset(), progress=False)
    assert isinstance(error.value, KeyboardInterrupt) and error.value.step == 6
    assert json.loads((run_dir / SIDECAR).read_text())["step"] == 4
    with run_lock(run_dir):  # the lock went with the interrupted run
        pass


def test_finished_run_is_kept_unless_overwrite(tmp_path):
    run_dir = tmp_path / "run"
    train_run(small_config(steps=4), run_dir, dataset=tiny_dataset(), progress=False)
    before = (run_dir / FINAL_FILE).read_text()
    with pytest.raises(RunExistsError, match=rf"{run_dir} holds a finished run .*--resume .*--overwrite"):
        train_run(small_config(steps=4), run_dir, dataset=tiny_dataset(), progress=False)
    assert (run_dir / FINAL_FILE).read_text() == before
    result = train_run(small_config(steps=4), run_dir, dataset=tiny_dataset(), progress=False, overwrite=True)
    assert result.step == 4 and (run_dir / FINAL_FILE).is_file()


def test_batch_larger_than_training_set_is_clamped_with_a_notice(tmp_path, capsys):
    run_dir = tmp_path / "run"
    # 8 training examples: the clamped batch has the shape the other tests compiled for
    dataset = tiny_dataset(n_train=8)
    result = train_run(small_config(steps=2, batch_size=500), run_dir, dataset=dataset, progress=False)
    assert result.step == 2
    assert "--batch-size 500 exceeds the 8 training examples; using 8" in capsys.readouterr().err
    assert json.loads((run_dir / "config.json").read_text())["optim"]["batch_size"] == 8


def test_corrupt_final_and_metrics_are_named_and_skipped(tmp_path, capsys, uninterrupted):
    good, bad, torn = tmp_path / "good", tmp_path / "bad", tmp_path / "torn"
    for folder in (good, bad, torn):
        folder.mkdir()
        for name in (FINAL_FILE, METRICS_FILE):
            (folder / name).write_bytes((uninterrupted / name).read_bytes())
    (bad / FINAL_FILE).write_text('{"dataset": "long_ran')
    (torn / METRICS_FILE).write_text((torn / METRICS_FILE).read_text()[:-30])
    runs = find_runs([tmp_path])
    assert [Path(r["run_dir"]).name for r in runs] == ["good", "torn"]
    assert read_metrics(torn) == []
    err = capsys.readouterr().err
    assert f"skipping this run: {bad / FINAL_FILE} is corrupt or truncated" in err
    assert f"no curve for this run: {torn / METRICS_FILE} line 3 is corrupt or truncated" in err


def test_failed_run_is_listed_in_results(tmp_path):
    run_dir = tmp_path / "long_range_pattern-linear-rhel-seed3"
    cause = record_failure(run_dir, small_config(), FloatingPointError("training loss is nan at step 3\nmore"))
    assert cause == "training loss is nan at step 3"
    assert json.loads((run_dir / FAILED_FILE).read_text())["cause"] == cause
    summary = write_results([tmp_path], tmp_path, plots=False)
    assert summary["runs"] == [] and len(summary["failed"]) == 1
    assert f"| {run_dir.name} | training loss is nan at step 3 |" in (tmp_path / "results.md").read_text()


def test_ddof_outside_0_to_n_minus_1_is_refused(tmp_path, uninterrupted):
    with pytest.raises(ValueError, match=r"--ddof 1 is outside \[0, 0\] for long_range_pattern/linear/rhel"):
        write_results([uninterrupted], tmp_path, ddof=1, plots=False)
    with pytest.raises(ValueError, match=r"--ddof must lie in \[0, n - 1\] for n seeds, got -1"):
        write_results([uninterrupted], tmp_path, ddof=-1, plots=False)


@pytest.mark.parametrize("name", ["in_size", "hidden", "state_size"])
def test_hssm_non_integer_size(name):
    sizes = {"in_size": 3, "hidden": 8, "state_size": 4, name: 2.5}
    with pytest.raises(ValueError, match=rf"HSSM {name} must be a positive integer, got 2.5"):
        HSSM(sizes["in_size"], 2, hidden=sizes["hidden"], state_size=sizes["state_size"], num_blocks=1,
             key=jax.random.key(0))  # fmt: skip


def test_hssm_float_labels_and_wrong_channels():
    model, state = eqx.nn.make_with_state(HSSM)(3, 4, hidden=8, state_size=4, num_blocks=1, key=jax.random.key(0))
    model = eqx.nn.inference_mode(model)
    x = jnp.zeros((2, 10, 3))

    def loss(inputs, targets):  # traced only: the checks happen while tracing
        return eqx.filter_eval_shape(batch_loss, model, state, inputs, targets)[0]

    with pytest.raises(TypeError, match="classification targets must be integer class labels, got dtype float64"):
        loss(x, jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"HSSM input must have shape \(length, 3\) .* got \(10, 5\)"):
        loss(jnp.zeros((2, 10, 5)), jnp.array([1, 2]))
    assert loss(x, jnp.array([1, 2])).shape == ()
