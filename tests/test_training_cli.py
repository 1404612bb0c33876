"""`rhel train`: option parsing and overrides, a small end-to-end run, resume of finished runs, clear errors."""

from __future__ import annotations

import argparse
import json

import pytest

from rhel.training import cli
from rhel.training.config import DataConfig, GradientConfig, ModelConfig, OptimConfig, TrainConfig, save_config


def parser():
    p = argparse.ArgumentParser(prog="rhel")
    cli.register(p.add_subparsers(dest="command"))
    return p


def run(argv):
    args = parser().parse_args(argv)
    return args.func(args)


def test_overrides_resolve_to_typed_config():
    args = parser().parse_args(
        [
            "train",
            "--config",
            "paper/eigenworms-linear",
            "--model",
            "nonlinear",
            "--gradient",
            "rhel-one-sided",
            "bptt",
            "--epsilon",
            "0.01",
            "--seed",
            "4",
            "5",
            "--float64",
            "--steps",
            "10",
            "--lr",
            "3e-4",
            "--batch-size",
            "2",
            "--eval-every",
            "5",
            "--loss-scale",
            "128",
        ]
    )
    config = cli.resolve_config(args)
    assert config.model.unit == "nonlinear" and config.model.hidden == 64 and config.data.name == "EigenWorms"
    assert config.gradient.methods == ("rhel-one-sided", "bptt") and config.gradient.epsilon == 0.01
    assert config.gradient.loss_scale == 128.0 and config.seeds == (4, 5) and config.float64
    assert (config.optim.steps, config.optim.lr, config.optim.batch_size, config.optim.eval_every) == (10, 3e-4, 2, 5)
    default = cli.resolve_config(parser().parse_args(["train"]))
    assert default.name == "default" and default.gradient.methods == ("rhel", "bptt")
    assert default.data.name == "long_range_pattern"
    # a different dataset drops the default task's options (they belong to long_range_pattern)
    other = cli.resolve_config(parser().parse_args(["train", "--dataset", "adding"]))
    assert other.data.options == {}


def test_impossible_settings_exit_with_a_message(capsys):
    assert run(["train", "--lr", "-0.1"]) == 2
    assert "optim.lr must be a positive number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["train", "--model", "quadratic"])  # argparse rejects it
    assert run(["train", "--config", "no/such"]) == 2
    assert "no shipped config" in capsys.readouterr().err


def test_train_end_to_end_and_resume(tmp_path, capsys):
    config = TrainConfig(
        name="cli-test",
        seeds=(1, 2),
        data=DataConfig(
            name="long_range_pattern",
            options={"length": 16, "n_train": 48, "n_val": 24, "n_test": 24, "burst": 4, "window": 0.5},
        ),
        model=ModelConfig(num_blocks=1, hidden=8, state_size=4, dropout=0.1),
        optim=OptimConfig(lr=1e-2, batch_size=8, steps=8, eval_every=4, patience=0),
        gradient=GradientConfig(methods=("rhel",)),
    )
    path = save_config(config, tmp_path / "cli.toml")
    out = tmp_path / "out"
    assert run(["train", "--config", str(path), "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "long_range_pattern (linear HSSM), test accuracy:  RHEL" in captured.out and "(chance 25.0%)" in captured.out
    assert "| Lin RHEL |" in captured.out
    for seed in (1, 2):
        (run_dir,) = out.glob(f"long_range_pattern-linear-rhel-seed{seed}-*")  # the settings digest follows
        final = json.loads((run_dir / "final.json").read_text())
        assert final["seed"] == seed and final["step"] == 8 and 0.0 <= final["test_metric"] <= 1.0
        assert json.loads((run_dir / "config.json").read_text())["seeds"] == [seed]
        env = json.loads((run_dir / "environment.json").read_text())
        assert {"jax", "jaxlib", "equinox", "optax", "devices", "x64_enabled", "float_dtype"} <= set(env)
        assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2
    assert (out / "results.md").is_file() and (out / "results.csv").is_file()
    # --resume keeps finished runs as they are
    (seed1,) = out.glob("long_range_pattern-linear-rhel-seed1-*")
    before = (seed1 / "final.json").read_text()
    assert run(["train", "--config", str(path), "--out", str(out), "--no-progress", "--resume"]) == 0
    assert "already finished, kept" in capsys.readouterr().err
    assert (seed1 / "final.json").read_text() == before


def test_list_configs(capsys):
    assert run(["train", "--list-configs"]) == 0
    names = capsys.readouterr().out.split()
    assert "default" in names and "paper/ppg-nonlinear" in names and "datasets/fsdd-linear" in names
