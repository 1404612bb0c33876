"""`rhel results`: aggregation over seeds (mean ± std, ddof stated), markdown/CSV tables and curve plots."""

from __future__ import annotations

import argparse
import csv
import io
import json

import numpy as np
import pytest

from rhel.training import cli
from rhel.training.results import aggregate, find_runs, write_results


def fake_run(root, dataset, unit, gradient, seed, test, metric="accuracy"):
    run = root / f"{dataset}-{unit}-{gradient}-seed{seed}"
    run.mkdir(parents=True)
    final = {
        "dataset": dataset,
        "unit": unit,
        "gradient": gradient,
        "seed": seed,
        "metric": metric,
        "test_metric": test,
        "num_classes": 2,
    }
    (run / "final.json").write_text(json.dumps(final))
    lines = [{"step": s, "train_loss": 1.0 / s, f"val_{metric}": test * s / 3} for s in (1, 2, 3)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return run


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, (b, r) in enumerate([(0.80, 0.70), (0.90, 0.80), (0.85, 0.90)]):
        fake_run(root / "worms", "EigenWorms", "linear", "bptt", seed, b)
        fake_run(root / "worms", "EigenWorms", "linear", "rhel", seed, r)
    fake_run(root / "ppg", "ppg_dalia", "nonlinear", "rhel", 0, 0.084, metric="mse")
    fake_run(root / "ppg", "ppg_dalia", "nonlinear", "rhel", 1, 0.086, metric="mse")
    return root


def test_aggregate_mean_and_std(runs):
    rows = {(r.dataset, r.gradient): r for r in aggregate(find_runs([runs]))}
    bptt = rows[("EigenWorms", "bptt")]
    assert bptt.seeds == (0, 1, 2) and bptt.mean == pytest.approx(0.85)
    assert bptt.std == pytest.approx(np.sqrt(((0.05**2) + 0 + 0.05**2) / 3))  # ddof = 0
    assert bptt.label == "Lin BPTT"
    rows1 = {(r.dataset, r.gradient): r for r in aggregate(find_runs([runs]), ddof=1)}
    assert rows1[("EigenWorms", "rhel")].std == pytest.approx(0.1)  # sample std of 0.7, 0.8, 0.9
    assert rows[("ppg_dalia", "rhel")].mean == pytest.approx(0.085)


def test_repeated_seed_is_an_error(runs):
    fake_run(runs / "again", "EigenWorms", "linear", "bptt", 0, 0.5)
    with pytest.raises(ValueError, match="seed repeated"):
        aggregate(find_runs([runs]))


def test_write_results_markdown_csv_and_plots(runs, tmp_path):
    summary = write_results([runs / "worms", runs / "ppg"], tmp_path / "out")
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| Lin BPTT | 85.0 ± 4.1 (3) |" in markdown and "| Lin RHEL | 80.0 ± 8.2 (3) |" in markdown
    assert "| Nonlin RHEL | 8.5 ± 0.1 (2) |" in markdown and "ddof=0" in markdown  # MSE x 1e-2
    table = list(csv.DictReader(io.StringIO((tmp_path / "out" / "results.csv").read_text())))
    assert len(table) == 3
    first = table[0]
    assert (first["dataset"], first["gradient"], first["n"], first["seeds"]) == ("EigenWorms", "bptt", "3", "0 1 2")
    assert float(first["mean"]) == pytest.approx(0.85)
    assert [float(v) for v in first["values"].split()] == [0.8, 0.9, 0.85]
    assert sorted(p.name for p in summary["pngs"]) == ["curves-EigenWorms.png", "curves-ppg_dalia.png"]
    assert all(p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG" for p in summary["pngs"])


def test_results_command(runs, tmp_path, capsys):
    args = argparse.Namespace(dirs=[str(runs)], out=str(tmp_path / "o"), ddof=0, no_plots=True)
    assert cli.results_command(args) == 0
    out = capsys.readouterr().out
    assert "| Lin RHEL | 80.0 ± 8.2 (3) |" in out and "8 run(s)" in out
    assert not list((tmp_path / "o").glob("*.png"))
    args = argparse.Namespace(dirs=[str(tmp_path / "missing")], out=None, ddof=0, no_plots=True)
    assert cli.results_command(args) == 2
