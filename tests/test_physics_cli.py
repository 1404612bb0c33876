"""The ``rhel demo`` command line (parser only: the demos themselves are timed by hand, see
docs/physics.md)."""

import argparse

import pytest

from rhel.physics.cli import register


@pytest.fixture()
def parser():
    p = argparse.ArgumentParser(prog="rhel")
    register(p.add_subparsers(dest="command"))
    return p


def test_demo_oscillators_arguments(parser):
    args = parser.parse_args(["demo", "oscillators", "--out", "x", "--seed", "3", "--steps", "7", "--no-animation"])
    assert (args.out, args.seed, args.steps, args.no_animation) == ("x", [3], 7, True)
    assert args.epsilon == 1e-3 and args.time_steps == 400 and args.gradient == "rhel" and callable(args.func)


@pytest.mark.parametrize("name", ["oscillators", "fput", "damping", "noise"])
def test_demo_defaults(parser, name):
    args = parser.parse_args(["demo", name])
    assert args.out == f"runs/demo-{name}" and args.seed == [0] and callable(args.func)


def test_demo_without_subcommand_prints_help(parser, capsys):
    args = parser.parse_args(["demo"])
    assert args.func(args) == 2
    assert "oscillators" in capsys.readouterr().out
