"""rhel bench: the worker's record, OOM and timeout records instead of crashes, and the ratio table."""

from __future__ import annotations

import json

import pytest

from rhel.reports.bench import run_bench, run_config
from rhel.reports.bench_tables import format_bench, growth_per_1k, ratio_table

TINY = {"model": "linear", "num_blocks": 1, "hidden": 4, "state_size": 4, "batch_size": 2}


def test_worker_record_fields():
    r = run_config("rhel", 32, TINY, repeats=2, timeout_s=300)
    assert r["status"] == "ok", r
    keys = ("method", "length", "step_time_s", "times_s", "compile_s", "baseline_rss_mb", "peak_rss_mb")
    keys += ("run_peak_rss_mb", "first_step_retained_mb", "memory_mb", "import_rss_mb", "peak_minus_import_mb")
    keys += ("xla_memory", "wall_s")
    for key in keys:
        assert key in r, key
    assert r["method"] == "rhel" and r["length"] == 32 and len(r["times_s"]) == 2
    assert r["step_time_s"] > 0 and r["peak_rss_mb"] >= r["baseline_rss_mb"] > 0
    # what the first step keeps is part of its peak
    assert r["first_step_retained_mb"] <= r["run_peak_rss_mb"] - r["baseline_rss_mb"] + 1e-9
    json.dumps(r)


def test_memory_limit_is_reported_as_oom():
    r = run_config("bptt", 32, TINY, repeats=1, timeout_s=300, mem_limit_mb=50)
    assert r["status"] == "oom" and "limit" in r["error"]


def test_timeout_is_reported():
    r = run_config("bptt", 32, TINY, repeats=1, timeout_s=0.5)
    assert r["status"] == "timeout"


def test_failed_method_is_skipped_after_oom():
    report = run_bench(TINY, methods=("bptt",), lengths=(16, 32), beyond=True, mem_limit_mb=50, timeout_s=300)
    statuses = [r["status"] for r in report["results"]]
    assert statuses == ["oom", "skipped"]
    assert "OOM" in format_bench(report)
    assert report["machine"]["cores"] >= 1 and report["schema"] == "rhel.bench/1"


def _ok(method, length, t, m):
    return {"method": method, "length": length, "status": "ok", "step_time_s": t, "memory_mb": m}


def test_ratio_table():
    results = [_ok("rhel", 1024, 1.0, 10.0), _ok("bptt", 1024, 2.0, 40.0),
               _ok("rhel", 4096, 3.0, 20.0), _ok("bptt", 4096, 4.0, 160.0),
               {"method": "rhel", "length": 8192, "status": "ok", "step_time_s": 6.0, "memory_mb": 30.0},
               {"method": "bptt", "length": 8192, "status": "oom", "error": "x"}]  # fmt: skip
    rows = {(r["method"], r["length"]): r for r in ratio_table(results)}
    assert rows[("rhel", 1024)]["time_ratio"] == pytest.approx(0.5)
    assert rows[("rhel", 1024)]["memory_ratio"] == pytest.approx(0.25)
    assert rows[("rhel", 4096)]["time_ratio"] == pytest.approx(0.75)
    assert rows[("rhel", 4096)]["memory_ratio"] == pytest.approx(0.125)
    assert rows[("bptt", 4096)]["time_ratio"] == pytest.approx(1.0)
    assert rows[("rhel", 8192)]["time_ratio"] is None and rows[("bptt", 8192)]["status"] == "oom"
    assert growth_per_1k(results, "rhel") == pytest.approx(10.0 / 4.096)
    report = {"methods": ["rhel", "bptt"], "lengths": [1024, 4096, 8192], "ratios": ratio_table(results),
              "results": results}  # fmt: skip
    text = format_bench(report)
    assert "OOM" in text and "0.50" in text and "0.12" in text and "*" not in text
    # a step whose RHEL contract check warned is measured, and marked: its gradient is not accurate
    results[2] = {**results[2], "contract_warnings": ["RHEL's echoes left their linear regime ..."]}
    report["ratios"] = ratio_table(results)
    marked = format_bench(report)
    assert "3000.0*" in marked and "1000.0*" not in marked and "contract check failed there" in marked


def test_markdown_table():
    from rhel.reports.markdown import bench_markdown

    results = [_ok("rhel", 4096, 3.0, 20.0), _ok("bptt", 4096, 4.0, 160.0), _ok("rhel", 8192, 5.0, 30.0),
               {"method": "bptt", "length": 8192, "status": "oom", "error": "x"}]  # fmt: skip
    report = {"methods": ["rhel", "bptt"], "lengths": [4096, 8192], "ratios": ratio_table(results), "results": results}
    text = bench_markdown(report)
    assert "**0.75**" in text and "**0.12**" in text and "OOM" in text


def test_forward_method_and_its_ratio():
    """The forward pass (loss only) runs as a method, and every other method's time is a multiple of it."""
    report = run_bench(TINY, methods=("forward", "rhel"), lengths=(32,), beyond=False, repeats=1, timeout_s=300)
    by = {r["method"]: r for r in report["results"]}
    assert by["forward"]["status"] == "ok" and by["rhel"]["status"] == "ok", report["results"]
    rows = {r["method"]: r for r in report["ratios"]}
    assert rows["forward"]["forward_ratio"] == pytest.approx(1.0)
    expected = by["rhel"]["step_time_s"] / by["forward"]["step_time_s"]
    assert rows["rhel"]["forward_ratio"] == pytest.approx(expected)
    assert "xFwd" in format_bench(report)


def test_lengths_that_would_not_fit_are_skipped_with_their_extrapolated_memory():
    from rhel.reports.bench import _would_not_fit
    from rhel.reports.bench_tables import extrapolate_memory

    results = [dict(_ok("bptt", 1000, 1.0, 100.0), baseline_rss_mb=500.0),
               dict(_ok("bptt", 2000, 2.0, 190.0), baseline_rss_mb=500.0)]  # fmt: skip
    # the line through (1000, 100) and (2000, 190): 10 + 0.09 L
    assert extrapolate_memory(results, "bptt", 1_000_000) == pytest.approx(90_010.0)
    assert extrapolate_memory(results[:1], "bptt", 3000) == pytest.approx(300.0)  # one point: in proportion
    assert extrapolate_memory(results, "rhel", 3000) is None
    assert _would_not_fit(results, "bptt", 4000, mem_limit_mb=1000.0) is None  # 370 + 500 MB fit
    skipped = _would_not_fit(results, "bptt", 1_000_000, mem_limit_mb=1000.0)
    assert skipped["extrapolated_memory_mb"] == pytest.approx(90_010.0) and "not attempted" in skipped["error"]
    record = {"method": "bptt", "length": 1_000_000, "status": "skipped", **skipped}
    report = {"methods": ["bptt"], "lengths": [1000, 2000, 1_000_000], "ratios": ratio_table([*results, record]),
              "results": [*results, record]}  # fmt: skip
    assert "SKIPPED ~90010" in " ".join(format_bench(report).split())


def test_rounds_alternate_the_methods_and_report_the_median(monkeypatch):
    """``rounds=3``: each round runs every method once in turn; a record holds the median step time and memory over
    its rounds; a failed round is reported as such and its configuration is not run again."""
    import rhel.reports.bench as bench

    calls = []
    times = {"forward": [0.3, 0.1, 0.2], "rhel": [0.9, 0.5, 0.7], "bptt": [1.0, 1.0, 1.0]}

    def fake_run_config(method, length, config, *, repeats, timeout_s, mem_limit_mb):
        k = sum(1 for m, _ in calls if m == method)
        calls.append((method, length))
        if method == "bptt" and k == 1:
            return {"method": method, "length": length, "status": "oom", "error": "killed"}
        return dict(_ok(method, length, times[method][k], 10.0 * (k + 1)), baseline_rss_mb=100.0)

    monkeypatch.setattr(bench, "run_config", fake_run_config)
    report = bench.run_bench(TINY, methods=("forward", "rhel", "bptt"), lengths=(64,), beyond=False, rounds=3)
    assert [m for m, _ in calls] == ["forward", "rhel", "bptt", "forward", "rhel", "bptt", "forward", "rhel"]
    by = {r["method"]: r for r in report["results"]}
    assert by["forward"]["step_time_s"] == 0.2 and by["forward"]["memory_mb"] == 20.0
    assert by["rhel"]["step_time_s"] == 0.7 and len(by["rhel"]["rounds"]) == 3
    assert by["bptt"]["status"] == "oom" and len(by["bptt"]["rounds"]) == 2
    assert report["ratios"] and report["rounds"] == 3


def test_scaling_records_contract_warnings_instead_of_stopping():
    # `rhel bench --devices` measures cost like `rhel bench`: a nonlinear float32 run of 4,096 steps whose echoes leave
    # their linear regime is measured and marked, not stopped (a training run would stop with the ContractError)
    from rhel.reports.bench_scaling import format_scaling, run_scaling

    config = {"model": "nonlinear", "num_blocks": 1, "hidden": 16, "state_size": 16, "batch_size": 2}
    report = run_scaling(config, devices=1, methods=["rhel"], length=4096, repeats=1)
    (record,) = report["records"]
    assert record["step_time_s"] > 0 and any("left their linear regime" in w for w in record["contract_warnings"])
    table = format_scaling(report)
    assert "| rhel* | 1 |" in table and "RHEL's contract check failed there" in table


def test_resync_every_reaches_the_symmetric_rhel_methods_and_the_table():
    from rhel.gradients import BPTT
    from rhel.reports.bench import worker_command
    from rhel.reports.bench_worker import cost_gradient

    config = {**TINY, "resync_every": 8}
    assert worker_command("rhel", 32, config, 1)[-2:] == ["--resync-every", "8"]
    assert worker_command("rhel", 32, {**TINY, "model": "nonlinear", "step": 0.01}, 1)[-2:] == ["--step", "0.01"]
    assert (cost_gradient("rhel", 8).resync_every, cost_gradient("rhel", 8).check) == (8, "warn")
    assert cost_gradient("rhel-one-sided", 8).resync_every is None and isinstance(cost_gradient("bptt", 8), BPTT)
    r = run_config("rhel", 32, config, repeats=1, timeout_s=300)
    assert r["status"] == "ok", r
    report = {"methods": ["rhel"], "lengths": [32], "results": [r], "ratios": ratio_table([r]), "bench_config": config}
    assert "rhel resync_every=8" in format_bench(report)
