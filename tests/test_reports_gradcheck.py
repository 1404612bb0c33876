"""rhel gradcheck on a tiny HSSM: real RHEL-vs-BPTT comparisons, the JSON schema and the plots."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from rhel.reports.gradcheck import compare, format_table, make_problem, run_gradcheck
from rhel.training.config import DataConfig, ModelConfig, TrainConfig

TINY = TrainConfig(
    data=DataConfig(options={"length": 32, "n_train": 4, "n_val": 1, "n_test": 1}),
    model=ModelConfig(unit="linear", num_blocks=1, hidden=6, state_size=4),
)


@pytest.fixture(scope="module")
def report():
    problem = make_problem(TINY, batch_size=2)
    # sweep: only the default eps (1.0 for a linear HRU), which needs no extra compilation
    return run_gradcheck(problem, precisions=("float64", "float32"), estimators=("central",), sweep=(1.0,))


def test_compare_metrics():
    a = np.array([1.0, 2.0, 2.0])
    r = compare(2 * a, a)
    assert r["cosine"] == pytest.approx(1.0) and r["norm_ratio"] == pytest.approx(2.0)
    assert r["rel_error"] == pytest.approx(1.0)
    z = compare(np.zeros(3), np.zeros(3))
    assert (z["cosine"], z["norm_ratio"], z["rel_error"]) == (1.0, 1.0, 0.0)
    assert compare(np.array([1.0, 0.0]), np.array([0.0, 1.0]))["cosine"] == pytest.approx(0.0)


def test_linear_float64_rhel_equals_bptt(report):
    rows = [r for r in report["results"] if r["precision"] == "float64" and r["estimator"] == "central"]
    assert {r["block"] for r in rows} >= {"encoder", "block 0", "head"}
    assert any(r["param"] == "unit.a_hat" for r in rows)
    for r in rows:
        assert r["cosine"] >= 0.999999, r
        assert abs(r["norm_ratio"] - 1.0) <= 1e-6, r
    # the comparison is real: RHEL's gradient of an HRU parameter is not zero
    assert all(r["bptt_norm"] > 0 for r in rows if r["param"].startswith("unit.b"))


def test_float32_is_close_but_not_bitwise(report):
    s = {(x["precision"], x["estimator"]): x for x in report["summary"]}
    assert s[("float32", "central")]["min_cosine"] > 0.999
    assert s[("float32", "central")]["max_rel_error"] > s[("float64", "central")]["max_rel_error"]
    # what float32 itself reaches: float32 BPTT against float64 BPTT, as close as float32 RHEL (a linear HRU)
    floor = report["float32_bptt_vs_float64"]
    assert 0 < floor["rel_error"] < 1e-4 and floor["cosine"] > 0.999999
    assert s[("float32", "central")]["global_rel_error"] < 10 * floor["rel_error"] + 1e-6


def test_json_schema(report):
    text = json.dumps(report, allow_nan=False)  # strict JSON (NaN written as null)
    data = json.loads(text)
    for key in ("schema", "config", "batch_size", "length", "channels", "seed", "environment", "precisions",
                "estimators", "epsilon", "results", "summary", "float32_bptt_vs_float64", "eps_sweep"):  # fmt: skip
        assert key in data
    assert data["schema"] == "rhel.gradcheck/1"
    for key in ("precision", "estimator", "block", "param", "size", "cosine", "norm_ratio", "rel_error",
                "bptt_norm", "rhel_norm"):  # fmt: skip
        assert key in data["results"][0]
    for key in ("precision", "estimator", "epsilon", "min_cosine", "worst_norm_ratio", "worst_norm_ratio_at",
                "max_rel_error", "global_cosine", "global_rel_error"):  # fmt: skip
        assert key in data["summary"][0]
    sweep = data["eps_sweep"]
    assert {r["epsilon"] for r in sweep} == {1.0}  # the default eps of a linear HRU
    assert sum(r["default"] for r in sweep) == len(data["precisions"])
    assert data["epsilon"]["float64"]["central"] == 1.0


def test_table_and_plots(report, tmp_path):
    from rhel.reports.plots import plot_alignment, plot_eps_sweep

    table = format_table(report)
    assert "summary" in table and "unit.a_hat" in table and "float32" in table
    assert "float32 BPTT vs float64 BPTT (what float32 itself reaches here): global rel.err" in table
    for fn, name in ((plot_alignment, "fig4.png"), (plot_eps_sweep, "sweep.png")):
        path = fn(report, tmp_path / name)
        assert path.stat().st_size > 1000


def test_cli_register_and_config(tmp_path):
    from rhel.reports.cli import register, resolve_gradcheck_config

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["gradcheck", "--model", "nonlinear", "--length", "64", "--json", "out.json"])
    assert args.func.__name__ == "gradcheck_command" and args.json == "out.json"
    config = resolve_gradcheck_config(args)
    assert config.model.unit == "nonlinear" and config.data.options["length"] == 64
    args = parser.parse_args(["bench", "--lengths", "64", "--no-beyond"])
    assert args.func.__name__ == "bench_command" and args.lengths == [64]


def test_rhel_runs_as_the_config_trains_it():
    """gradcheck measures the echo the config trains with: its epsilon in its convention (the paper configs' absolute
    nudge) and its re-synchronisation; the flags override them."""
    import dataclasses

    from rhel.reports.gradcheck import _global, gradients
    from rhel.training.config import GradientConfig

    config = dataclasses.replace(
        TINY,
        model=ModelConfig(unit="nonlinear", num_blocks=1, hidden=6, state_size=4),
        gradient=GradientConfig(epsilon=0.3, relative_epsilon=False, resync_every=8),
    )
    problem = make_problem(config, batch_size=2)
    report = run_gradcheck(problem, precisions=("float64",), estimators=("central",), sweep=(0.3,))
    assert [(r["epsilon"], r["default"]) for r in report["eps_sweep"]] == [(0.3, True)]  # the config's eps is starred
    settings = (report["epsilon"]["float64"]["central"], report["relative_epsilon"], report["resync_every"])
    assert settings == (0.3, False, 8)
    assert "eps (absolute: times the loss gradient): central 0.3; echo re-synchronised every 8 steps" in format_table(
        report
    )
    reference = gradients(problem, "float64", "bptt")
    measured = report["summary"][0]["global_rel_error"]
    as_trained = _global(gradients(problem, "float64", "rhel", 0.3, 8, relative=False), reference)["rel_error"]
    as_relative = _global(gradients(problem, "float64", "rhel", 0.3, 8, relative=True), reference)["rel_error"]
    assert measured == as_trained and abs(as_relative - as_trained) > 1e-3 * as_trained
    overridden = run_gradcheck(problem, precisions=("float64",), estimators=("central",), epsilon=0.01, resync_every=4)
    assert (overridden["epsilon"]["float64"]["central"], overridden["resync_every"]) == (0.01, 4)
