"""benchmarks/ab_compare.py: the A/B summary (minimum over every timed step, median of the per-process medians)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _load():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "ab_compare.py"
    spec = importlib.util.spec_from_file_location("ab_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(tree, method, times, status="ok"):
    times = [t / 1000 for t in times]
    rec = {"tree": tree, "method": method, "model": "linear", "length": 64, "status": status, "times_s": times}
    rec["step_time_s"] = sorted(times)[len(times) // 2] if times else None
    return rec


def test_summary_takes_the_minimum_and_the_median_of_medians_as_multiples_of_the_forward_pass():
    ab = _load()
    records = [
        _record("A", "forward", [100, 110, 120]), _record("A", "rhel", [300, 330, 390]),
        _record("A", "forward", [105, 140, 150]), _record("A", "rhel", [320, 350, 400]),
        _record("B", "forward", [100, 100, 100]), _record("B", "rhel", [250, 260, 270]),
        _record("B", "forward", [100, 100, 100]), _record("B", "rhel", [], status="error"),
    ]  # fmt: skip
    lines = ab.summarise(records, {"A": "/a", "B": "/b"})
    assert lines[0] == "linear L=64"
    # A: forward min 100, medians 110 / 140 -> 125; rhel min 300, medians 330 / 350 -> 340
    assert lines[1] == "  A: forward min 100 ms, median 125 ms; rhel min 300 ms, median 340 ms = 3.00 / 2.72 x forward"
    # a failed process is left out, not counted as fast
    assert lines[2] == "  B: forward min 100 ms, median 100 ms; rhel min 250 ms, median 260 ms = 2.50 / 2.60 x forward"


def test_rejects_a_missing_tree(tmp_path):
    ab = _load()
    with pytest.raises(SystemExit):
        ab.main([str(tmp_path / "nowhere"), str(tmp_path), "--rounds", "1"])
