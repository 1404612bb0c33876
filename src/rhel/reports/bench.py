"""``rhel bench``: time per training step and peak memory per gradient method and sequence length.

Every (method, length) configuration runs in a **fresh process** (``python -m rhel.reports.bench --worker ...``)
that prints one JSON line. The parent enforces a per-configuration timeout and a memory limit (it watches the
worker's resident memory and kills it above the limit); a timeout, an out-of-memory kill or an XLA
``RESOURCE_EXHAUSTED`` error is recorded as such, never raised.

The training step is the training module's own (``rhel.training.loop.make_train_step``: ``filter_grad`` of the
batch loss with respect to all parameters, then the Adam update), on an HSSM built by
``rhel.training.loop.build_model`` and a batch of the ``long_range_pattern`` task generated at the requested length
by ``rhel.data.load``. The step is compiled ahead of time (compile excluded from the timings), run once to warm up,
then ``repeats`` times; the median is reported.

Memory (CPU): ``baseline_rss_mb`` is the worker's resident memory after imports, data and model creation and
compilation, just before the first step; ``peak_rss_mb`` is ``ru_maxrss`` (the whole process's high-water mark);
``run_peak_rss_mb`` is the highest resident memory sampled (every 2 ms) while steps run. The table's memory is
``memory_mb = run_peak_rss_mb - baseline_rss_mb``, the memory a training step adds. On a GPU ``memory_mb`` is
``peak_bytes_in_use`` of the device (minus the bytes in use before the first step). XLA's own estimate
(``memory_analysis()`` of the compiled step: temporaries, arguments, outputs) is recorded as a cross-check.
"""

from __future__ import annotations

import argparse
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

SCHEMA = "rhel.bench/1"
#: bench method name -> the training module's gradient-method name
METHODS = {
    "rhel": "rhel",
    "rhel-one-sided": "rhel-one-sided",
    "bptt": "bptt",
    "checkpointed-bptt": "checkpointed-bptt",
}
DEFAULT_METHODS = ("rhel", "rhel-one-sided", "bptt", "checkpointed-bptt")
DEFAULT_LENGTHS = (1024, 2048, 4096, 8192, 16384, 32768, 49920)
#: the issue's default bench configuration
DEFAULT_CONFIG = {"model": "linear", "num_blocks": 2, "hidden": 64, "state_size": 256, "batch_size": 4}
STATUSES = ("ok", "oom", "timeout", "error")


# ---------------------------------------------------------------------------------------------- memory


def current_rss_bytes() -> int:
    """This process's resident memory now (Linux ``/proc/self/statm``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def rss_of(pid: int) -> int:
    """Resident memory of another process (bytes; 0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def max_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class RSSSampler:
    """Sample this process's resident memory in a background thread; ``peak`` since the last ``reset``."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss_bytes())
            time.sleep(self.interval)

    def reset(self):
        self.peak = current_rss_bytes()

    def __enter__(self):
        self.reset()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python/jax/jaxlib versions, backend and devices."""
    import jax

    from rhel.training.loop import environment_info

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


# ---------------------------------------------------------------------------------------------- worker


def _worker_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rhel.reports.bench --worker")
    p.add_argument("--worker", action="store_true")
    p.add_argument("--method", required=True, choices=sorted(METHODS))
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--model", default=DEFAULT_CONFIG["model"], choices=("linear", "nonlinear"))
    p.add_argument("--num-blocks", type=int, default=DEFAULT_CONFIG["num_blocks"])
    p.add_argument("--hidden", type=int, default=DEFAULT_CONFIG["hidden"])
    p.add_argument("--state-size", type=int, default=DEFAULT_CONFIG["state_size"])
    p.add_argument("--batch-size", type=int, default=DEFAULT_CONFIG["batch_size"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mem-limit-mb", type=float, default=None, help="RLIMIT_AS for this process (optional)")
    p.add_argument("--no-remat-ff", action="store_true", help="store the feed-forward activations (HSSM remat_ff off)")
    p.add_argument("--rhel-chunk", type=int, default=None, help="RHEL's echo block size (default: the core's)")
    p.add_argument("--compile-only", action="store_true", help="only compile; report XLA's memory analysis")
    return p


def _is_oom(error: BaseException) -> bool:
    text = f"{type(error).__name__}: {error}"
    return (
        isinstance(error, MemoryError)
        or "RESOURCE_EXHAUSTED" in text
        or "Out of memory" in text
        or ("bad_alloc" in text)
    )


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one configuration in this process; return the result record (see docs/reports.md)."""
    record: dict[str, Any] = {"method": args.method, "length": args.length, "status": "error"}
    if args.mem_limit_mb:
        import resource

        limit = int(args.mem_limit_mb * 1024**2)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        record.update(_measure(args))
        record["status"] = "ok"
    except BaseException as error:  # noqa: BLE001 - every failure becomes a record
        record["status"] = "oom" if _is_oom(error) else "error"
        record["error"] = f"{type(error).__name__}: {str(error)[:500]}"
    return record


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    import equinox as eqx
    import jax
    import numpy as np

    from rhel.training.config import (
        DataConfig,
        GradientConfig,
        ModelConfig,
        OptimConfig,
        TrainConfig,
        make_gradient,
    )
    from rhel.training.loop import build_model, load_dataset, make_optimizer, make_train_step

    config = TrainConfig(
        seeds=(args.seed,),
        data=DataConfig(
            "long_range_pattern",
            options={"length": args.length, "n_train": args.batch_size, "n_val": 1, "n_test": 1},
        ),
        model=ModelConfig(
            unit=args.model,
            num_blocks=args.num_blocks,
            hidden=args.hidden,
            state_size=args.state_size,
            remat_ff=not args.no_remat_ff,
        ),
        optim=OptimConfig(batch_size=args.batch_size),
        gradient=GradientConfig(methods=(args.method,)),
    ).validate()
    dataset = load_dataset(config, args.seed)
    model, state = build_model(config.model, dataset, key=jax.random.PRNGKey(args.seed))
    optimizer = make_optimizer(config.optim)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    x = jax.numpy.asarray(np.asarray(dataset.train.inputs[: args.batch_size], np.float32))
    y = jax.numpy.asarray(np.asarray(dataset.train.targets[: args.batch_size]))
    key = jax.random.PRNGKey(args.seed + 1)
    gradient = make_gradient(METHODS[args.method])
    if args.rhel_chunk is not None and args.method.startswith("rhel"):
        import dataclasses

        gradient = dataclasses.replace(gradient, chunk=args.rhel_chunk)
    step = make_train_step(optimizer, gradient, 1.0)
    import_rss = current_rss_bytes()

    t0 = time.perf_counter()
    compiled = step.lower(model, state, opt_state, x, y, None, key).compile()
    compile_s = time.perf_counter() - t0
    xla = {}
    try:
        analysis = compiled.compiled.memory_analysis()
        for name in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
                     "generated_code_size_in_bytes"):  # fmt: skip
            xla[name] = int(getattr(analysis, name))
    except Exception:  # noqa: BLE001 - not every backend provides it
        pass

    if args.compile_only:
        return {"compile_s": compile_s, "xla_memory": xla, "memory_mb": xla.get("temp_size_in_bytes", 0) / 1024**2}
    device = jax.devices()[0]
    gpu = jax.default_backend() != "cpu"

    def device_bytes(key):
        try:
            return int((device.memory_stats() or {}).get(key, 0))
        except Exception:  # noqa: BLE001
            return 0

    def run_once():
        out = compiled(model, state, opt_state, x, y, None, key)
        jax.block_until_ready(out)
        return out

    baseline = current_rss_bytes()
    device_base = device_bytes("bytes_in_use") if gpu else 0
    with RSSSampler() as sampler:
        warmup_s = None
        if args.repeats > 1:  # a single repeat (long sequences) is timed without a warm-up
            t0 = time.perf_counter()
            run_once()
            warmup_s = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run_once()
            times.append(time.perf_counter() - t0)
        run_peak = sampler.peak
    peak = max_rss_bytes()
    mb = 1024.0**2
    record = {
        "step_time_s": statistics.median(times),
        "times_s": times,
        "warmup_s": warmup_s,
        "compile_s": compile_s,
        "import_rss_mb": import_rss / mb,
        "baseline_rss_mb": baseline / mb,
        "peak_rss_mb": peak / mb,
        "run_peak_rss_mb": run_peak / mb,
        "peak_minus_import_mb": (peak - import_rss) / mb,
        "xla_memory": xla,
        "device": str(device),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if gpu:
        record["device_peak_mb"] = device_bytes("peak_bytes_in_use") / mb
        record["memory_mb"] = (device_bytes("peak_bytes_in_use") - device_base) / mb
    else:
        record["memory_mb"] = (run_peak - baseline) / mb
    return record


def worker_main(argv: Sequence[str] | None = None) -> int:
    args = _worker_parser().parse_args(argv)
    record = run_worker(args)
    print(json.dumps(record), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------- parent


def worker_command(
    method: str, length: int, config: dict[str, Any], repeats: int, *, mem_limit_as_mb: float | None = None
) -> list[str]:
    cmd = [sys.executable, "-m", "rhel.reports.bench", "--worker", "--method", method, "--length", str(length),
           "--model", config["model"], "--num-blocks", str(config["num_blocks"]), "--hidden", str(config["hidden"]),
           "--state-size", str(config["state_size"]), "--batch-size", str(config["batch_size"]),
           "--repeats", str(repeats)]  # fmt: skip
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
) -> dict[str, Any]:
    """Run one configuration in a fresh worker process; a timeout, a memory-limit kill, a crash or an error are
    returned as a record with ``status`` ``timeout``, ``oom`` or ``error`` (never raised)."""
    cmd = worker_command(method, length, config, repeats)
    base = {"method": method, "length": length}
    started = time.perf_counter()
    env = {**os.environ, **(env or {})}
    src = str(Path(__file__).resolve().parents[2])
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
    log=None,
) -> dict[str, Any]:
    """Run every method at every length (each in a fresh process). A method that ran out of memory or time at
    some length is not run at longer lengths (recorded as ``skipped``). With ``beyond``, lengths keep doubling
    after the last one until every method has failed or ``budget_s`` (counted from the start; it only cuts the
    lengths beyond ``lengths``) is spent."""
    mem_limit_mb = default_memory_limit_mb() if mem_limit_mb is None else mem_limit_mb
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    queue = list(lengths)
    extended = False
    while queue:
        length = queue.pop(0)
        for method in methods:
            if method in failed:
                results.append({"method": method, "length": length, "status": "skipped",
                                "error": f"{failed[method]} at a shorter length"})  # fmt: skip
                continue
            if extended and budget_s is not None and time.perf_counter() - started > budget_s:
                results.append({"method": method, "length": length, "status": "skipped", "error": "time budget spent"})
                continue
            n = long_repeats if (long_repeats is not None and length >= long_from) else repeats
            record = run_config(method, length, config, repeats=n, timeout_s=timeout_s, mem_limit_mb=mem_limit_mb)
            record["repeats"] = n
            results.append(record)
            if record["status"] in ("oom", "timeout"):
                failed[method] = record["status"]
            if log:
                log(describe(record))
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
        "machine": machine_info(),
        "wall_s": time.perf_counter() - started,
        "memory_label": "peak memory added by a step (MB)",
        "results": results,
        "ratios": ratio_table(results),
    }


def _next_beyond(length: int) -> int:
    return 2 ** math.ceil(math.log2(length + 1))


def describe(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return f"{r['method']:>18} L={r['length']:>6}: {r['status'].upper()} ({r.get('error', '')[:120]})"
    return (f"{r['method']:>18} L={r['length']:>6}: {r['step_time_s'] * 1e3:9.1f} ms/step, +{r['memory_mb']:8.1f} MB "
            f"(peak RSS {r['peak_rss_mb']:.0f} MB, compile {r['compile_s']:.1f} s)")  # fmt: skip


# ---------------------------------------------------------------------------------------------- tables


def ratio_table(results: Sequence[dict[str, Any]], reference: str = "bptt") -> list[dict[str, Any]]:
    """Per length and per method: time and memory ratios against ``reference`` (BPTT). A ratio is ``None`` where
    either measurement failed; ``status`` carries the method's status."""
    by = {(r["method"], r["length"]): r for r in results}
    rows = []
    for length in sorted({r["length"] for r in results}):
        ref = by.get((reference, length))
        ref_ok = ref is not None and ref["status"] == "ok"
        for method in dict.fromkeys(r["method"] for r in results):
            r = by.get((method, length))
            if r is None:
                continue
            ok = r["status"] == "ok"
            row = {"length": length, "method": method, "status": r["status"],
                   "step_time_s": r.get("step_time_s") if ok else None,
                   "memory_mb": r.get("memory_mb") if ok else None,
                   "time_ratio": r["step_time_s"] / ref["step_time_s"] if ok and ref_ok else None,
                   "memory_ratio": (r["memory_mb"] / ref["memory_mb"] if ok and ref_ok and ref["memory_mb"] > 0
                                    else None)}  # fmt: skip
            rows.append(row)
    return rows


def growth_per_1k(results: Sequence[dict[str, Any]], method: str) -> float | None:
    """Least-squares slope of ``memory_mb`` against length, in MB per 1,000 steps (lengths >= 4096, ok only)."""
    pts = [(r["length"], r["memory_mb"]) for r in results
           if r["method"] == method and r["status"] == "ok" and r["length"] >= 4096]  # fmt: skip
    if len(pts) < 2:
        return None
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return 1000.0 * sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def format_bench(report: dict[str, Any], reference: str = "bptt") -> str:
    """The side-by-side table: one row per length, per method time (ms) and memory (MB) with ratios to BPTT."""
    methods = report["methods"]
    rows = report["ratios"]
    index = {(r["method"], r["length"]): r for r in rows}
    head = f"{'length':>7} | " + " | ".join(f"{m:^27}" for m in methods)
    sub = f"{'':>7} | " + " | ".join(f"{'ms':>8} {'xBPTT':>5} {'MB':>6} {'xBPTT':>5}" for _ in methods)
    lines = [head, sub, "-" * len(sub)]
    for length in report["lengths"]:
        cells = []
        for m in methods:
            r = index.get((m, length))
            if r is None:
                cells.append(f"{'':>27}")
            elif r["status"] != "ok":
                cells.append(f"{r['status'].upper():^27}")
            else:
                tr = "" if r["time_ratio"] is None else f"{r['time_ratio']:.2f}"
                mr = "" if r["memory_ratio"] is None else f"{r['memory_ratio']:.2f}"
                cells.append(f"{r['step_time_s'] * 1e3:>8.1f} {tr:>5} {r['memory_mb']:>6.0f} {mr:>5}")
        lines.append(f"{length:>7} | " + " | ".join(cells))
    growth = {m: growth_per_1k(report["results"], m) for m in methods}
    lines.append("")
    lines.append("memory growth per 1k steps (MB, fit over lengths >= 4096): " + ", ".join(
        f"{m} {'n/a' if g is None else f'{g:.2f}'}" for m, g in growth.items()))  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if "--worker" in sys.argv[1:]:
        sys.exit(worker_main(sys.argv[1:]))
    from rhel.reports.cli import main

    sys.exit(main(["bench", *sys.argv[1:]]))
