"""Trained runs as objects: self-describing model files, `rhel evaluate` / `rhel predict`, `rhel.load_run` without
the dataset, run folders that never collide in a sweep, and `rhel results` grouping them by setting.

Training here runs in float64 (the suite enables x64): `rhel evaluate` must reproduce `final.json` exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rhel.cli import main
from rhel.data import load
from rhel.data.core import DataError
from rhel.training import cli, inference_cli
from rhel.training.artifacts import ModelFileError, load_model, load_run, read_inputs
from rhel.training.config import DataConfig, GradientConfig, ModelConfig, OptimConfig, TrainConfig, save_config
from rhel.training.results import find_runs
from rhel.training.runs import legacy_run_name, run_dir_for, run_name, run_settings

SRC = Path(__file__).resolve().parents[1] / "src"


def run(argv):
    p = argparse.ArgumentParser(prog="rhel")
    sub = p.add_subparsers(dest="command")
    cli.register(sub)
    inference_cli.register(sub)
    args = p.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two tiny runs on a user .npz file that differ only in the learning rate, written to one --out."""
    root = tmp_path_factory.mktemp("sweep")
    ds = load("long_range_pattern", seed=0, length=16, n_train=48, n_val=24, n_test=24, burst=4, window=0.5)
    data = root / "data" / "patterns.npz"
    data.parent.mkdir()
    arrays = {f"{a}_{s}": getattr(getattr(ds, s), b) for s in ("train", "val", "test") for a, b in (("x", "inputs"),
              ("y", "targets"))}  # fmt: skip
    np.savez(data, **arrays)
    np.savez(root / "test_inputs.npz", x=ds.test.inputs, y=ds.test.targets)
    config = TrainConfig(
        name="sweep",
        seeds=(1,),
        data=DataConfig(name=str(data)),
        model=ModelConfig(num_blocks=1, hidden=8, state_size=4, dropout=0.1),
        optim=OptimConfig(lr=1e-2, batch_size=8, steps=8, eval_every=4, patience=0, eval_batch_size=16),
        gradient=GradientConfig(methods=("bptt",)),  # compiles faster than RHEL; the files do not depend on it
    )
    path = save_config(config, root / "sweep.toml")
    out = root / "out"
    for lr in ("1e-2", "3e-3"):
        assert run(["train", "--config", path, "--out", out, "--no-progress", "--lr", lr]) == 0
    return root, out, config


def test_runs_differing_only_in_lr_both_survive_and_results_groups_them(sweep, capsys):
    root, out, config = sweep
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(dirs) == 2 and all(p.name.startswith("patterns-linear-bptt-seed1-") for p in dirs)
    lrs = sorted(json.loads((p / "config.json").read_text())["optim"]["lr"] for p in dirs)
    assert lrs == [3e-3, 1e-2]
    runs = find_runs([out])
    assert sorted(r["setting"] for r in runs) == ["lr=0.003", "lr=0.01"]
    capsys.readouterr()
    assert cli.results_command(argparse.Namespace(dirs=[str(out)], out=str(root / "t"), ddof=0, no_plots=True)) == 0
    printed = capsys.readouterr().out
    for r in runs:  # one row per setting; a single seed is a value, not "± 0.0"
        assert f"| Lin BPTT ({r['setting']}) | {100 * r['test_metric']:.1f} (1) |" in printed
    assert "± 0.0" not in printed


def test_evaluate_reproduces_final_and_predict_gives_its_accuracy(sweep, capsys):
    root, out, _ = sweep
    run_dir = next(p for p in sorted(out.iterdir()) if p.is_dir())
    final = json.loads((run_dir / "final.json").read_text())
    capsys.readouterr()
    assert run(["evaluate", run_dir]) == 0
    assert "patterns test (24 examples): accuracy" in capsys.readouterr().out
    record = json.loads((run_dir / "evaluation-patterns-test.json").read_text())
    assert record["test_accuracy"] == final["test_metric"] and record["test_loss"] == final["test_loss"]
    assert run(["predict", run_dir, "--inputs", root / "test_inputs.npz", "--out", root / "preds.npz"]) == 0
    assert f"accuracy against its labels {final['test_metric']!r}" in capsys.readouterr().out
    with np.load(root / "preds.npz") as preds:
        y = np.load(root / "test_inputs.npz")["y"]
        assert np.mean(preds["labels"] == y) == final["test_metric"]
        assert preds["probabilities"].shape == (24, 4)
        np.testing.assert_allclose(preds["probabilities"].sum(axis=1), 1.0, rtol=1e-12)
        assert "class_names" not in preds  # an .npz dataset's classes are its indices; they have no names


def test_load_run_in_a_fresh_process_without_the_dataset(sweep, tmp_path):
    root, out, _ = sweep
    run_dir = next(p for p in sorted(out.iterdir()) if p.is_dir())
    final = json.loads((run_dir / "final.json").read_text())
    moved = tmp_path / "patterns.npz"
    (root / "data" / "patterns.npz").rename(moved)  # the training data is gone
    try:
        script = (
            "import json, sys, numpy as np, rhel\n"
            "run = rhel.load_run(sys.argv[1])\n"
            "with np.load(sys.argv[2]) as z: x, y = z['x'], z['y']\n"
            "p = run.predict(x, batch_size=run.config.optim.eval_batch_size)\n"
            "print(json.dumps({'acc': float(np.mean(p['labels'] == y)), 'classes': run.info.num_classes,\n"
            "  'info': run.info.name, 'dtype': str(run.dtype), 'final': run.final['step']}))\n"
        )
        env = {**os.environ, "PYTHONPATH": str(SRC), "RHEL_DATA_DIR": str(tmp_path / "absent")}
        done = subprocess.run(
            [sys.executable, "-c", script, str(run_dir), str(root / "test_inputs.npz")],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        got = json.loads(done.stdout.strip().splitlines()[-1])
        assert got["acc"] == final["test_metric"] and got["classes"] == 4
        assert got["info"] == "patterns" and got["dtype"] == "float64" and got["final"] == 8
        assert run(["evaluate", run_dir]) == 2  # evaluate needs the data: a one-line error, not a traceback
    finally:
        moved.rename(root / "data" / "patterns.npz")


def test_corrupt_and_foreign_model_files_are_refused(sweep, tmp_path, capsys):
    _, out, _ = sweep
    run_dir = next(p for p in sorted(out.iterdir()) if p.is_dir())
    good = (run_dir / "best_model.eqx").read_bytes()
    bad = tmp_path / "bad.eqx"
    bad.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit of the last leaf flipped
    with pytest.raises(ModelFileError, match=r"bad\.eqx: corrupt or altered model file"):
        load_model(bad)
    legacy = tmp_path / "legacy.eqx"
    legacy.write_bytes(good.partition(b"\n")[2])  # leaves only, as before model files carried a header
    with pytest.raises(ModelFileError, match=r"legacy\.eqx: not an rhel model file"):
        load_model(legacy)
    with pytest.raises(ModelFileError, match="no best_model.eqx"):
        load_run(tmp_path)
    assert run(["predict", tmp_path, "--inputs", "x.npz", "--out", tmp_path / "p.npz"]) == 2
    assert "rhel predict:" in capsys.readouterr().err


def test_run_names_are_deterministic_and_old_folders_resume(tmp_path):
    config = TrainConfig(seeds=(3,), gradient=GradientConfig(methods=("rhel",), epsilon=0.1))
    other_eps = dataclasses.replace(config, gradient=dataclasses.replace(config.gradient, epsilon=0.2))
    assert run_name(config) == run_name(dataclasses.replace(config, name="renamed"))
    assert run_name(config) != run_name(other_eps)
    assert run_name(config).startswith("long_range_pattern-linear-rhel-seed3-") and len(run_name(config)) == 45
    bptt = dataclasses.replace(config, gradient=GradientConfig(methods=("bptt",), epsilon=0.1))
    bptt_other = dataclasses.replace(bptt, gradient=GradientConfig(methods=("bptt",), epsilon=0.2))
    assert run_name(bptt) == run_name(bptt_other)  # epsilon does not change what BPTT trains
    assert "gradient.epsilon" in run_settings(config) and "gradient.epsilon" not in run_settings(bptt)
    # a setting added later is omitted at the default that reproduces older runs: their names (and resumes) hold
    resync = dataclasses.replace(config, gradient=dataclasses.replace(config.gradient, resync_every=64))
    assert "gradient.resync_every" not in run_settings(config) and run_name(resync) != run_name(config)
    assert run_name(dataclasses.replace(bptt, gradient=GradientConfig(methods=("bptt",), resync_every=64))) == run_name(
        bptt
    )
    assert run_dir_for(tmp_path, config) == tmp_path / run_name(config)
    legacy = tmp_path / legacy_run_name(config)
    legacy.mkdir()
    (legacy / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    assert run_dir_for(tmp_path, config) == legacy  # a run started before names carried a digest resumes there
    assert run_dir_for(tmp_path, other_eps) == tmp_path / run_name(other_eps)


def test_read_inputs_reads_archive_files(tmp_path):
    tsv = tmp_path / "X_TEST.tsv"
    tsv.write_text("b\t1\t2\t3\na\t4\t5\tNaN\n")
    x, mask, y = read_inputs(tsv, classes=("a", "b"))
    assert x.shape == (2, 3, 1) and mask.tolist() == [[True] * 3, [True, True, False]] and y.tolist() == [1, 0]
    with pytest.raises(DataError, match=r"X_TEST\.tsv: labels \['b'\] are not classes"):
        read_inputs(tsv, classes=("a", "c"))
    with pytest.raises(DataError, match="unknown input format"):
        (tmp_path / "x.csv").write_text("1")
        read_inputs(tmp_path / "x.csv")


def test_bare_rhel_prints_help(capsys):
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage: rhel") and "evaluate" in printed and "predict" in printed
