"""One vocabulary across the command line (issue 12 items 3-5): help text on every flag, the same gradient-method
names in every command, any config field by --set, --print-config, --list-configs, log lines, callbacks,
TensorBoard scalars, environment.json provenance, and demo arguments refused with a message naming them."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
import types

import pytest

from rhel.cli import build_parser
from rhel.gradients.methods import METHOD_NAMES
from rhel.training.cli_options import RHEL_METHODS
from rhel.training.config import ConfigError, apply_settings, config_from_dict, list_configs, load_config
from rhel.training.logs import LogLines, format_record, provenance

TINY = [
    "--set", "data.options.length=16", "data.options.n_train=48", "data.options.n_val=24", "data.options.n_test=24",
    "data.options.burst=4", "data.options.window=0.5", "model.hidden=8", "model.state_size=4", "optim.batch_size=8",
    "--steps", "4", "--eval-every", "2", "--gradient", "bptt", "--seed", "3", "--no-progress",
]  # fmt: skip


def _parsers(parser: argparse.ArgumentParser, prog: str = "rhel"):
    """Every (name, parser) of the command line, sub-commands recursively."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{prog} {name}")


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def _commands() -> dict[str, argparse.ArgumentParser]:
    return dict(_parsers(build_parser()))


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def test_every_flag_has_help_text_with_its_default():
    commands = _commands()
    assert {"rhel train", "rhel gradcheck", "rhel bench", "rhel data fetch", "rhel demo oscillators"} <= set(commands)
    missing, no_default = [], []
    for prog, parser in commands.items():
        parser.format_help()  # every help text formats (no stray % in it)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction | argparse._VersionAction):
                continue
            if action.help == argparse.SUPPRESS:  # a deprecated spelling
                continue
            name = f"{prog} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing.append(name)
            elif action.option_strings and action.nargs != 0 and not action.required and "default" not in action.help:
                no_default.append(name)
    assert missing == [] and no_default == []


def test_gradient_method_names_are_the_same_in_every_command():
    commands = _commands()
    names = {prog: tuple(_option(p, "--gradient").choices) for prog, p in commands.items()
             if any("--gradient" in a.option_strings for a in p._actions)}  # fmt: skip
    # bench also times the forward pass alone (``forward``), the reference of its ratios: not a gradient method
    assert names["rhel train"] == names["rhel bench"][1:] == METHOD_NAMES and names["rhel bench"][0] == "forward"
    assert "rhel-richardson" in names["rhel bench"] and "checkpointed-bptt" in names["rhel train"]
    # gradcheck and the demos compare RHEL with BPTT: the documented subset, spelled as in the table
    assert RHEL_METHODS == ("rhel", "rhel-one-sided", "rhel-richardson")
    for prog in ("rhel gradcheck", "rhel demo oscillators", "rhel demo fput", "rhel demo damping"):
        assert names[prog] == RHEL_METHODS
    assert set(names) == {"rhel train", "rhel bench", "rhel gradcheck", "rhel demo oscillators", "rhel demo fput",
                          "rhel demo damping"}  # fmt: skip
    for prog in ("rhel train", "rhel gradcheck", "rhel demo oscillators", "rhel demo noise"):
        assert _option(commands[prog], "--seed").nargs == "+"
    for prog in ("rhel train", "rhel gradcheck", "rhel demo oscillators", "rhel demo damping"):
        assert _option(commands[prog], "--epsilon").type is float


def test_old_spellings_are_deprecated_aliases(capsys):
    parser = build_parser()
    args = parser.parse_args(["gradcheck", "--estimator", "one_sided", "central", "--eps-values", "0.1"])
    assert args.gradient == ["rhel-one-sided", "rhel"] and args.epsilon_values == [0.1]
    args = parser.parse_args(["bench", "--methods", "rhel-richardson"])
    assert args.gradient == ["rhel-richardson"]
    args = parser.parse_args(["demo", "fput", "--T", "3", "--n-steps", "30"])
    assert (args.duration, args.time_steps) == (3.0, 30)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "rhel gradcheck: --estimator is deprecated; use --gradient",
        "rhel gradcheck: --eps-values is deprecated; use --epsilon-values",
        "rhel bench: --methods is deprecated; use --gradient",
        "rhel demo fput: --T is deprecated; use --duration",
        "rhel demo fput: --n-steps is deprecated; use --time-steps",
    ]


def test_set_is_typed_and_validated(capsys):
    base = load_config("default")
    settings = ["model.hidden=128", "optim.lr=3e-4", "gradient.methods=rhel-one-sided,bptt", "float64=true",
                "seeds=[4, 5]", "model.step=0.5", "data.options.length=64"]  # fmt: skip
    config = apply_settings(base, settings)
    assert config.model.hidden == 128 and type(config.model.hidden) is int
    assert config.optim.lr == 3e-4 and config.gradient.methods == ("rhel-one-sided", "bptt")
    assert config.float64 is True and config.seeds == (4, 5) and config.model.step == 0.5
    assert config.data.options["length"] == 64 and config.data.options["n_train"] == 1024
    assert apply_settings(config, ["model.step=none"]).model.step is None
    with pytest.raises(ConfigError, match="model has no field 'hiden'"):
        apply_settings(base, ["model.hiden=3"])
    with pytest.raises(ConfigError, match="optim.steps must be an integer, got 1.5"):
        apply_settings(base, ["optim.steps=1.5"])
    with pytest.raises(ConfigError, match="model.hidden must be >= 1, got 0"):
        apply_settings(base, ["model.hidden=0"])
    with pytest.raises(ConfigError, match="unknown gradient method 'rhel-two-sided'"):
        apply_settings(base, ["gradient.methods=rhel-two-sided"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_settings(base, ["model.hidden"])
    # on the command line: applied after the other options; an unknown key exits 2 naming it
    assert run(["train", "--set", "optim.typo=1"]) == 2
    assert capsys.readouterr().err.startswith("rhel train: --set optim.typo: optim has no field 'typo'")


def test_print_config_prints_the_resolved_toml(capsys):
    argv = ["train", "--config", "paper/scp1-linear", "--steps", "7", "--set", "model.hidden=32", "optim.steps=9"]
    assert run([*argv, "--print-config"]) == 0
    text = capsys.readouterr().out
    config = config_from_dict(tomllib.loads(text))
    assert config.name == "paper/scp1-linear" and config.model.hidden == 32 and config.optim.steps == 9
    assert config == apply_settings(load_config("paper/scp1-linear"), ["optim.steps=7", "model.hidden=32",
                                                                       "optim.steps=9"])  # fmt: skip


def test_list_configs_describes_each_config(capsys):
    assert run(["train", "--list-configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "dataset", "length", "steps", "seeds", "description"]
    rows = {line.split()[0]: line for line in lines[1:]}
    shipped = list_configs()  # one row per shipped config, whatever is added later
    assert len(shipped) >= 29 and set(rows) == set(shipped) and "paper/ppg-nonlinear" in rows
    assert rows["default"].split()[1:5] == ["long_range_pattern", "512", "200", "1"]
    assert "The embedded default of `rhel train`" in rows["default"]
    assert rows["paper/eigenworms-linear"].split()[1:5] == ["EigenWorms", "17,984", "100,000", "5"]
    assert rows["paper/eigenworms-linear"].endswith("linear HSSM on EigenWorms (UEA), length 17,984, 5 classes")


def test_format_record_and_log_lines():
    record = {"step": 50, "epoch": 1, "train_loss": 0.68123, "train_accuracy": 0.5, "val_loss": 0.7,
              "val_accuracy": 0.53125, "best_step": 50, "best_val_accuracy": 0.53125, "elapsed_s": 12.34}  # fmt: skip
    assert format_record(record, total_steps=200, steps_per_s=4.05) == (
        "eval step 50/200  loss 0.6812  val_accuracy 0.5312  best 0.5312 (step 50)  elapsed 12.3 s  4.05 steps/s"
    )
    lines = []
    log = LogLines(total_steps=200, prefix="run: ", stream=types.SimpleNamespace(write=lines.append, flush=lambda: 0))
    log(record)
    log({**record, "step": 100, "elapsed_s": 22.34, "val_accuracy": 0.5, "best_step": 50})
    text = "".join(lines).splitlines()
    assert text[0].endswith("elapsed 12.3 s  4.05 steps/s") and text[0].startswith("run: eval step 50/200")
    assert text[1].endswith("best 0.5312 (step 50)  elapsed 22.3 s  5 steps/s")


class _FakeWriter:
    """Stands in for tensorboardX.SummaryWriter (not a test dependency)."""

    scalars: list = []

    def __init__(self, log_dir):
        self.log_dir = log_dir

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def flush(self):
        pass

    def close(self):
        self.scalars.append("closed")


def test_train_log_lines_tensorboard_and_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # missing: a clear error before any work
    assert run(["train", *TINY, "--out", str(tmp_path / "none"), "--log", "tensorboard"]) == 2
    assert capsys.readouterr().err == (
        "rhel train: --log tensorboard needs the tensorboardX package: pip install 'rhel[tensorboard]'\n"
    )
    assert not (tmp_path / "none").exists()
    monkeypatch.setitem(sys.modules, "tensorboardX", types.SimpleNamespace(SummaryWriter=_FakeWriter))
    _FakeWriter.scalars = []
    monkeypatch.setattr(sys, "argv", ["rhel", "train", "--steps", "4"])
    assert run(["train", *TINY, "--out", str(tmp_path), "--log", "tensorboard"]) == 0
    err = capsys.readouterr().err
    logged = [line for line in err.splitlines() if ": eval step " in line]
    assert [line.split(": eval step ")[1].split()[0] for line in logged] == ["2/4", "4/4"]
    assert all("elapsed" in line and "steps/s" in line and "val_accuracy" in line for line in logged)
    (run_dir,) = tmp_path.glob("long_range_pattern-linear-bptt-seed3-*")
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert ("val_accuracy", records[1]["val_accuracy"], 4) in _FakeWriter.scalars
    assert ("train_loss", records[0]["train_loss"], 2) in _FakeWriter.scalars and _FakeWriter.scalars[-1] == "closed"
    env = json.loads((run_dir / "environment.json").read_text())
    assert env["command_line"] == ["rhel", "train", "--steps", "4"] and "jax" in env
    assert env["git_commit"] == provenance()["git_commit"]
    assert env["git_commit"] is None or len(env["git_commit"].split("+")[0]) == 40


def test_train_run_callbacks(tmp_path, capsys):
    from rhel.training.cli import resolve_config
    from rhel.training.config import expand
    from rhel.training.loop import train_run

    config = resolve_config(build_parser().parse_args(["train", *TINY]))
    seen = []
    result = train_run(expand(config)[0], tmp_path / "run", progress=False, callbacks=[seen.append])
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert seen == records and [r["step"] for r in seen] == [2, 4]
    assert result.best_val_metric == max(r["val_accuracy"] for r in seen)
    assert capsys.readouterr().err.count(": eval step ") == 2  # progress=False: log lines


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epsilon", "-0.1"], "--epsilon must be a positive number, got -0.1"),
        (["--duration", "-2"], "--duration must be a positive number, got -2.0"),
        (["--time-steps", "0"], "--time-steps must be an integer >= 1, got 0"),
        (["--lr", "0"], "--lr must be a positive number, got 0.0"),
        (["--steps", "0"], "--steps must be an integer >= 1, got 0"),
    ],
)
def test_demo_refuses_impossible_arguments(argv, message, capsys):
    assert run(["demo", "oscillators", *argv]) == 2
    assert capsys.readouterr().err == f"rhel demo oscillators: {message}\n"


def test_demo_blames_epsilon_and_learning_rate_not_the_time_step():
    from rhel.physics import PhysicsError, demo
    from rhel.physics.train import fput_task

    demo._setup()
    task = fput_task(T=2.0, n_steps=40, seed=0)
    with pytest.raises(PhysicsError) as error:
        demo._gradients(task, 1e6, adjoint_steps=40)
    assert str(error.value) == (
        "the nudged echoes diverged with --epsilon 1e+06 (the time step dt = 0.05 is stable at the initial "
        "parameters); reduce --epsilon"
    )
    with pytest.raises(PhysicsError, match=r"^training diverged with --lr 1000 \(the time step dt = 0.05 is stable"):
        demo._train_both(task, steps=2, lr=1e3, epsilon=1e-3, gradient="rhel")
