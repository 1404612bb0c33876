"""No error a user can trigger from the ``rhel`` command line prints a traceback: one or two lines naming the argument
or the file, and an exit status (2: usage/config, 1: runtime, 130: Ctrl-C); ``--debug`` / ``RHEL_DEBUG=1`` show the
traceback. One test per kind of bad input; failures of one run never take the other runs down.
"""

from __future__ import annotations

import errno
import json

import equinox as eqx
import jax.numpy as jnp
import pytest

from rhel.cli import main
from rhel.training import checkpoints
from rhel.training import loop as loop_module
from rhel.training.config import DataConfig, GradientConfig, ModelConfig, OptimConfig, TrainConfig, save_config
from rhel.training.faults import FAILED_FILE, RunLockedError

DATA = dict(length=16, n_train=48, n_val=24, n_test=24, burst=4, window=0.5)


def write_config(tmp_path, **data_options):
    """A tiny experiment: seeds 1 and 2, RHEL, 4 steps (the shapes test_faults compiles for)."""
    config = TrainConfig(
        name="cli-errors",
        seeds=(1, 2),
        data=DataConfig(name="long_range_pattern", options={**DATA, **data_options}),
        model=ModelConfig(num_blocks=1, hidden=8, state_size=4, dropout=0.1),
        optim=OptimConfig(lr=1e-2, batch_size=8, steps=4, eval_every=4, patience=0),
        gradient=GradientConfig(methods=("rhel",)),
        float64=True,
    )
    return str(save_config(config, tmp_path / "tiny.toml"))


@pytest.fixture
def config_file(tmp_path):
    return write_config(tmp_path)


def rhel(capsys, *argv):
    """``rhel ARGV``: (exit status, stderr); asserts that no traceback was printed."""
    status = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


def train(capsys, config_file, out, *extra):
    return rhel(capsys, "train", "--config", config_file, "--out", str(out), "--no-progress", *extra)


def run_of(out, seed=1):
    """The run folder of ``seed`` under ``out`` (its name ends in a digest of the settings)."""
    (path,) = out.glob(f"long_range_pattern-linear-rhel-seed{seed}-*")
    return path


def test_config_error_is_usage(capsys):
    assert rhel(capsys, "train", "--steps", "0") == (
        2,
        "rhel train: invalid config 'default':\n  optim.steps must be >= 1, got 0\n",
    )


def test_finished_run_is_refused_without_resume_or_overwrite(capsys, config_file, tmp_path):
    out = tmp_path / "out"
    assert train(capsys, config_file, out)[0] == 0
    before = (run_of(out) / "final.json").read_text()
    status, err = train(capsys, config_file, out)
    assert status == 2 and f"rhel train: {run_of(out)} holds a finished run (final.json); pass --resume" in err
    assert (run_of(out) / "final.json").read_text() == before
    assert train(capsys, config_file, out, "--overwrite")[0] == 0


def test_corrupt_checkpoint_is_named(capsys, config_file, tmp_path):
    out = tmp_path / "out"
    train(capsys, config_file, out)
    for seed in (1, 2):
        (run_of(out, seed) / "final.json").unlink()  # as if killed after the checkpoint
    sidecar = run_of(out) / "checkpoint.json"
    sidecar.write_text(sidecar.read_text()[:30])
    status, err = train(capsys, config_file, out, "--resume")
    assert status == 1 and f"{run_of(out).name}: FAILED: {sidecar} is corrupt or truncated" in err
    assert json.loads((run_of(out) / FAILED_FILE).read_text())["error"] == "CheckpointError"
    assert (run_of(out, 2) / "final.json").is_file()  # the other run went on


def test_diverging_runs_are_recorded_and_the_others_go_on(capsys, config_file, tmp_path, monkeypatch):
    real = loop_module.train_step_for
    echo = eqx.filter_jit(lambda x: eqx.error_if(x, x > 0, "RHEL produced a non-finite gradient: an echo diverged"))

    def diverging(config):
        step = real(config)
        seed = config.seeds[0]

        def nan_loss(*args):
            out = step(*args)
            return (*out[:3], jnp.nan, *out[4:])

        def bad_echo(*args):
            return echo(jnp.ones(()))

        return {2: nan_loss, 3: bad_echo}.get(seed, step)

    monkeypatch.setattr(loop_module, "train_step_for", diverging)
    out = tmp_path / "out"
    status, err = train(capsys, config_file, out, "--seed", "1", "2", "3")
    assert status == 1
    assert f"{run_of(out, 2).name}: FAILED: training loss is nan at step 1 (rhel, seed 2); stopping." in err
    assert f"{run_of(out, 3).name}: FAILED: RHEL produced a non-finite gradient: an echo diverged\n" in err
    assert (run_of(out) / "final.json").is_file()
    results = (out / "results.md").read_text()
    assert f"| {run_of(out, 2).name} | training loss is nan at step 1" in results
    assert f"| {run_of(out, 3).name} | RHEL produced a non-finite gradient" in results
    assert "| Lin RHEL |" in results  # seed 1 still tabulated


def test_ctrl_c_is_one_line_and_exit_130(capsys, config_file, tmp_path, monkeypatch):
    class CtrlC(loop_module.BatchOrder):
        def indices(self, step):
            if step == 2:
                raise KeyboardInterrupt
            return super().indices(step)

    monkeypatch.setattr(loop_module, "BatchOrder", CtrlC)
    out = tmp_path / "out"
    status, err = train(capsys, config_file, out)
    assert status == 130
    assert err.splitlines()[-1] == f"rhel train: interrupted at step 2 in {run_of(out)}; resume with --resume"


@pytest.mark.parametrize(
    ("code", "advice"),
    [(errno.ENOSPC, "free some space"), (errno.EROFS, "writable file system"), (errno.EACCES, "make it writable")],
)
def test_unwritable_read_only_or_full_output_names_the_path(capsys, config_file, tmp_path, monkeypatch, code, advice):
    def refuse(path, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(code, "simulated")
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "open", refuse, raising=False)
    out = tmp_path / "out"
    status, err = train(capsys, config_file, out)
    lines = err.splitlines()
    assert status == 1 and lines[-2] == f"rhel train: simulated (nothing was replaced): {run_of(out) / 'config.json'}"
    assert advice in lines[-1]


def test_output_directory_that_is_a_file(capsys, config_file, tmp_path):
    out = tmp_path / "taken"
    out.write_text("")
    status, err = train(capsys, config_file, out)
    last = err.splitlines()[-1]
    assert status == 1 and last.startswith(f"rhel train: Not a directory: {out}/long_range_pattern-linear-rhel-seed1-")


def test_results_ddof_outside_range(capsys, config_file, tmp_path):
    out = tmp_path / "out"
    train(capsys, config_file, out, "--seed", "1")
    status, err = rhel(capsys, "results", str(out), "--no-plots", "--ddof", "1")
    assert (
        status == 2
        and err == "rhel results: --ddof 1 is outside [0, 0] for long_range_pattern/linear/rhel (1 seed(s))\n"
    )
    status, err = rhel(capsys, "results", str(out), "--no-plots", "--ddof", "-1")
    assert status == 2 and err == "rhel results: --ddof must lie in [0, n - 1] for n seeds, got -1\n"


def test_results_skip_corrupt_final_and_metrics(capsys, config_file, tmp_path):
    out = tmp_path / "out"
    train(capsys, config_file, out)
    bad = run_of(out, 2) / "final.json"
    bad.write_text("{")
    metrics = run_of(out) / "metrics.jsonl"
    metrics.write_text("{not json\n")
    status = main(["results", str(out)])  # with plots: the curves read metrics.jsonl
    captured = capsys.readouterr()
    assert status == 0 and "1 run(s); wrote" in captured.out
    assert f"skipping this run: {bad} is corrupt or truncated" in captured.err
    assert f"no curve for this run: {metrics} line 1 is corrupt or truncated" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["gradcheck", "--length", "0"], "--length must be a positive integer, got 0"),
        (["gradcheck", "--epsilon=-1e-3"], "--epsilon must be positive and finite, got -0.001"),
        (
            ["gradcheck", "--epsilon-sweep", "x.png", "--epsilon-values", "1e-3", "nan"],
            "--epsilon-values must be positive and finite, got nan",
        ),  # fmt: skip
        (["bench", "--repeats", "0"], "--repeats must be a positive integer, got 0"),
    ],
)
def test_report_arguments_are_refused(capsys, argv, message):
    status, err = rhel(capsys, *argv)
    assert status == 2 and err == f"rhel {argv[0]}: {message}\n"


def test_debug_flag_and_env_show_the_traceback(monkeypatch):
    with pytest.raises(ValueError, match="--repeats must be a positive integer"):
        main(["--debug", "bench", "--repeats", "0"])
    monkeypatch.setenv("RHEL_DEBUG", "1")
    with pytest.raises(ValueError, match="--length must be a positive integer"):
        main(["gradcheck", "--length", "0"])


def test_library_errors_map_to_one_line_and_a_status(capsys, monkeypatch):
    """The handler itself, for the error types the commands above do not reach cheaply."""
    from rhel.cli import report_error
    from rhel.data.core import DataError

    cases = [
        (RunLockedError("run folder r is in use by another rhel process (pid 42); wait"), 1, "pid 42"),
        (DataError("data/x.ts line 3: 2 values, expected 4\nmore\nand more"), 1, "data/x.ts line 3"),
        (TypeError("classification targets must be integer class labels, got dtype float64"), 2, "integer class"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ]
    for error, status, text in cases:
        assert report_error(error, "rhel x") == status
        err = capsys.readouterr().err
        assert text in err and len(err.splitlines()) <= 2
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        report_error(ZeroDivisionError("bug"), "rhel x")


def test_batch_size_larger_than_training_set_via_cli(capsys, tmp_path):
    out = tmp_path / "out"
    status, err = train(capsys, write_config(tmp_path, n_train=8), out, "--seed", "1", "--batch-size", "1000")
    assert status == 0 and "--batch-size 1000 exceeds the 8 training examples; using 8" in err
    assert json.loads((run_of(out) / "config.json").read_text())["optim"]["batch_size"] == 8


def test_overwrite_resets_a_failed_record(capsys, config_file, tmp_path):
    out = tmp_path / "out"
    assert train(capsys, config_file, out, "--seed", "1")[0] == 0
    (run_of(out) / "final.json").unlink()  # an unfinished run folder that a failed run left its record in
    (run_of(out) / FAILED_FILE).write_text(json.dumps({"cause": "old"}))
    assert train(capsys, config_file, out, "--seed", "1")[0] == 0
    assert not (run_of(out) / FAILED_FILE).exists()
