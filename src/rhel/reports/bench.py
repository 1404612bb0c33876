"""``rhel bench``: time per training step and peak memory per gradient method and sequence length.

Every (method, length) configuration runs in a **fresh process** (:mod:`rhel.reports.bench_worker`, which prints one
JSON line). This module is the parent: it enforces a per-configuration timeout and a memory limit (it watches the
worker's resident memory and kills it above the limit); a timeout, an out-of-memory kill or an XLA
``RESOURCE_EXHAUSTED`` error is recorded as such, never raised. The tables are in :mod:`rhel.reports.bench_tables`.

The training step is the training module's own (``rhel.training.experiment.make_train_step``: ``filter_grad`` of
the batch loss with respect to all parameters, then the Adam update), on an HSSM built by
``rhel.training.experiment.build_model`` and a batch of the ``long_range_pattern`` task generated at the requested
length by ``rhel.data.load``. The step is compiled ahead of time (compile excluded from the timings), run once to
warm up, then ``repeats`` times; the median is reported.

Memory (CPU): ``baseline_rss_mb`` is the worker's resident memory after imports, data and model creation and
compilation, just before the first step; ``peak_rss_mb`` is ``ru_maxrss`` (the whole process's high-water mark);
``run_peak_rss_mb`` is the highest resident memory sampled (every 2 ms) during the first step (the warm-up; the
other timed steps run unsampled, the sampler's thread slows them). The table's memory is
``memory_mb = run_peak_rss_mb - baseline_rss_mb``, the memory a training step adds. On a GPU ``memory_mb`` is
``peak_bytes_in_use`` of the device (minus the bytes in use before the first step). XLA's own estimate
(``memory_analysis()`` of the compiled step: temporaries, arguments, outputs) is recorded as a cross-check.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rhel.gradients.methods import METHOD_NAMES
from rhel.reports.bench_tables import describe, extrapolate_memory, ratio_table
from rhel.reports.bench_worker import DEFAULT_CONFIG, FORWARD, rss_of

SCHEMA = "rhel.bench/1"
#: What ``rhel bench --methods`` accepts: the forward pass (the reference) and every gradient-method name.
BENCH_METHODS = (FORWARD, *METHOD_NAMES)
#: The methods ``rhel bench`` runs unless told otherwise (any of :data:`BENCH_METHODS`).
DEFAULT_METHODS = (FORWARD, "rhel", "rhel-one-sided", "bptt", "checkpointed-bptt")
DEFAULT_LENGTHS = (1024, 2048, 4096, 8192, 16384, 32768, 49920)
STATUSES = ("ok", "oom", "timeout", "error")

__all__ = ["BENCH_METHODS", "DEFAULT_CONFIG", "DEFAULT_LENGTHS", "DEFAULT_METHODS", "FORWARD", "SCHEMA",
           "median_record", "run_bench", "run_config"]  # fmt: skip


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python/jax/jaxlib versions, backend and devices."""
    import jax

    from rhel.training.experiment import environment_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    ram = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    env = environment_info()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram,
        "os": platform.platform(),
        "python": env["python"],
        "jax": env["jax"],
        "jaxlib": env["jaxlib"],
        "equinox": env["equinox"],
        "backend": jax.default_backend(),
        "devices": env["devices"],
    }


# ---------------------------------------------------------------------------------------------- parent


def worker_command(
    method: str, length: int, config: dict[str, Any], repeats: int, *, mem_limit_as_mb: float | None = None
) -> list[str]:
    """The command line of the worker process for one configuration."""
    cmd = [sys.executable, "-m", "rhel.reports.bench_worker", "--method", method, "--length", str(length),
           "--model", config["model"], "--num-blocks", str(config["num_blocks"]), "--hidden", str(config["hidden"]),
           "--state-size", str(config["state_size"]), "--batch-size", str(config["batch_size"]),
           "--repeats", str(repeats)]  # fmt: skip
    for key in ("step", "resync_every"):  # set only when asked for (a report's config keeps the defaults implicit)
        if config.get(key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(config[key])]
    if mem_limit_as_mb:
        cmd += ["--mem-limit-mb", str(mem_limit_as_mb)]
    return cmd


def run_config(
    method: str,
    length: int,
    config: dict[str, Any],
    *,
    repeats: int = 3,
    timeout_s: float = 600.0,
    mem_limit_mb: float | None = None,
    env: dict[str, str] | None = None,
    src: str | Path | None = None,
) -> dict[str, Any]:
    """Run one configuration in a fresh worker process; a timeout, a memory-limit kill, a crash or an error are
    returned as a record with ``status`` ``timeout``, ``oom`` or ``error`` (never raised). ``src``: the source folder
    whose ``rhel`` the worker imports (default: this package's; ``benchmarks/ab_compare.py`` times another checkout)."""
    cmd = worker_command(method, length, config, repeats)
    base = {"method": method, "length": length}
    started = time.perf_counter()
    env = {**os.environ, **(env or {})}
    src = str(Path(__file__).resolve().parents[2] if src is None else Path(src).resolve())
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out_chunks: list[str] = []
    err_chunks: list[str] = []
    readers = [
        threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True),
        threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True),
    ]
    for r in readers:
        r.start()
    watched_peak, reason = 0, None
    while proc.poll() is None:
        rss = rss_of(proc.pid)
        watched_peak = max(watched_peak, rss)
        if mem_limit_mb is not None and rss > mem_limit_mb * 1024**2:
            reason = "oom"
        elif time.perf_counter() - started > timeout_s:
            reason = "timeout"
        if reason:
            proc.kill()
            proc.wait()
            break
        time.sleep(0.01)
    for r in readers:
        r.join(timeout=5)
    wall = time.perf_counter() - started
    stderr = "".join(err_chunks)
    extra = {"wall_s": wall, "watched_peak_rss_mb": watched_peak / 1024**2}
    if reason == "oom":
        return {**base, "status": "oom", **extra,
                "error": f"resident memory above the limit of {mem_limit_mb:.0f} MB; killed"}  # fmt: skip
    if reason == "timeout":
        return {**base, "status": "timeout", **extra, "error": f"no result within {timeout_s:.0f} s; killed"}
    lines = [line for line in "".join(out_chunks).splitlines() if line.startswith("{")]
    if lines:
        try:
            return {**json.loads(lines[-1]), **extra}
        except json.JSONDecodeError:
            pass
    code = proc.returncode
    status = "oom" if code in (-9, 137) or "RESOURCE_EXHAUSTED" in stderr or "bad_alloc" in stderr else "error"
    return {**base, "status": status, **extra, "error": f"worker exited with {code}: {stderr.strip()[-500:]}"}


def default_memory_limit_mb() -> float:
    """75% of the machine's available memory (Linux), else 8 GiB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable"):
                    return 0.75 * int(line.split()[1]) / 1024
    except OSError:
        pass
    return 8192.0


def run_bench(
    config: dict[str, Any],
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    lengths: Sequence[int] = DEFAULT_LENGTHS,
    beyond: bool = True,
    repeats: int = 3,
    long_repeats: int | None = 1,
    long_from: int = 16384,
    timeout_s: float = 600.0,
    budget_s: float | None = None,
    mem_limit_mb: float | None = None,
    rounds: int = 1,
    log=None,
) -> dict[str, Any]:
    """Run every method at every length (each in a fresh process). With ``rounds`` > 1 every length is measured in
    that many rounds, each running every method once in turn (so that a slow spell of the machine falls on all the
    methods alike), and a configuration's record gives the median over its rounds of the step time and of the memory
    (the rounds' records under ``rounds``; the first failed round's record if any round failed). A method that ran
    out of memory or time at some length is not run at longer lengths (recorded as ``skipped``). Nor is a length
    whose memory, extrapolated linearly from the method's shorter lengths, would not fit under ``mem_limit_mb``: it
    is recorded as ``skipped`` with ``extrapolated_memory_mb`` instead of being attempted until the machine swaps.
    With ``beyond``, lengths keep doubling after the last one until every method has failed or ``budget_s`` (counted
    from the start; it only cuts the lengths beyond ``lengths``) is spent."""
    mem_limit_mb = default_memory_limit_mb() if mem_limit_mb is None else mem_limit_mb
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    queue = list(lengths)
    extended = False
    while queue:
        length = queue.pop(0)
        runs: dict[str, list[dict[str, Any]]] = {}
        for method in methods:
            if method in failed:
                results.append({"method": method, "length": length, "status": "skipped",
                                "error": f"{failed[method]} at a shorter length"})  # fmt: skip
                continue
            if extended and budget_s is not None and time.perf_counter() - started > budget_s:
                results.append({"method": method, "length": length, "status": "skipped", "error": "time budget spent"})
                continue
            needed = _would_not_fit(results, method, length, mem_limit_mb)
            if needed is not None:
                results.append({"method": method, "length": length, "status": "skipped", **needed})
                if log:
                    log(describe(results[-1]))
                continue
            runs[method] = []
        n = long_repeats if (long_repeats is not None and length >= long_from) else repeats
        for _ in range(rounds):
            for method, done in runs.items():
                if done and done[-1]["status"] != "ok":
                    continue  # a failed configuration is not run again
                record = run_config(method, length, config, repeats=n, timeout_s=timeout_s, mem_limit_mb=mem_limit_mb)
                record["repeats"] = n
                done.append(record)
                if log:
                    log(describe(record))
        for method, done in runs.items():
            record = median_record(done)
            results.append(record)
            if log and len(done) > 1 and record["status"] == "ok":
                log(f"{describe(record)}  [median of {len(done)} rounds]")
            if record["status"] in ("oom", "timeout"):
                failed[method] = record["status"]
        budget_left = budget_s is None or time.perf_counter() - started < budget_s
        if not queue and beyond and len(failed) < len(methods) and budget_left and (extended or lengths):
            queue.append(2 * length if extended else _next_beyond(length))
            extended = True
    return {
        "schema": SCHEMA,
        "bench_config": dict(config),
        "methods": list(methods),
        "lengths": sorted({r["length"] for r in results}),
        "repeats": repeats,
        "long_repeats": long_repeats,
        "long_from": long_from,
        "timeout_s": timeout_s,
        "mem_limit_mb": mem_limit_mb,
        "budget_s": budget_s,
        "rounds": rounds,
        "machine": machine_info(),
        "wall_s": time.perf_counter() - started,
        "memory_label": "peak memory added by a step (MB)",
        "results": results,
        "ratios": ratio_table(results),
    }


def median_record(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's record from its rounds: a single round's record as it is; else the first failed round's
    record if a round failed, otherwise the record of the round with the median step time, whose ``step_time_s``
    and ``memory_mb`` are the medians over the rounds (the rounds' records under ``rounds``)."""
    if len(records) == 1:
        return records[0]
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        return {**failed[0], "rounds": list(records)}
    middle = sorted(records, key=lambda r: r["step_time_s"])[(len(records) - 1) // 2]
    return {**middle, "step_time_s": statistics.median(r["step_time_s"] for r in records),
            "memory_mb": statistics.median(r["memory_mb"] for r in records), "rounds": list(records)}  # fmt: skip


def _would_not_fit(results, method: str, length: int, mem_limit_mb: float) -> dict[str, Any] | None:
    """``{extrapolated_memory_mb, error}`` when the method's resident memory at ``length``, extrapolated from its
    measured lengths, would exceed ``mem_limit_mb``; ``None`` when it fits or nothing was measured yet."""
    added = extrapolate_memory(results, method, length)
    if added is None:
        return None
    ok = [r for r in results if r["method"] == method and r["status"] == "ok"]
    base = max(r.get("baseline_rss_mb", 0.0) for r in ok)
    if base + added <= mem_limit_mb:
        return None
    return {"extrapolated_memory_mb": added,
            "error": f"would need ~{added:,.0f} MB (extrapolated from {len(ok)} shorter lengths) on top of "
                     f"{base:,.0f} MB, above the {mem_limit_mb:,.0f} MB limit; not attempted"}  # fmt: skip


def _next_beyond(length: int) -> int:
    return 2 ** math.ceil(math.log2(length + 1))
