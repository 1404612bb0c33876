"""The ``rhel bench`` worker: measures one (method, length) configuration in this fresh process.

``python -m rhel.reports.bench_worker --method rhel --length 4096 ...`` builds the model, the batch and the training
step as ``rhel train`` does (:mod:`rhel.training.experiment`), compiles the step ahead of time, times ``repeats``
steps and prints one JSON record (see :mod:`rhel.reports.bench` for what the memory figures mean). Every failure
becomes a record (``status`` ``oom`` or ``error``); the parent process adds timeouts and memory-limit kills.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any

#: The issue's default bench configuration (the worker's defaults and ``rhel bench``'s).
DEFAULT_CONFIG = {"model": "linear", "num_blocks": 2, "hidden": 64, "state_size": 256, "batch_size": 4}
#: The reference method: the training-mode forward pass alone (the batch loss, no gradient, no update).
FORWARD = "forward"


# ---------------------------------------------------------------------------------------------- memory


def rss_of(pid: int | str = "self") -> int:
    """Resident memory of a process, this one by default (bytes; Linux ``/proc/<pid>/statm``; 0 where unavailable
    or when the process is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def current_rss_bytes() -> int:
    """This process's resident memory now."""
    return rss_of("self")


def max_rss_bytes() -> int:
    """This process's resident-memory high-water mark (``ru_maxrss``, in bytes on every platform)."""
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


# ---------------------------------------------------------------------------------------------- worker


def _worker_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rhel.reports.bench_worker")
    p.add_argument("--method", required=True,
                   help=f"a gradient-method name (rhel.gradients.methods) or '{FORWARD}' (the loss only)")  # fmt: skip
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--model", default=DEFAULT_CONFIG["model"], choices=("linear", "nonlinear"))
    p.add_argument("--num-blocks", type=int, default=DEFAULT_CONFIG["num_blocks"])
    p.add_argument("--hidden", type=int, default=DEFAULT_CONFIG["hidden"])
    p.add_argument("--state-size", type=int, default=DEFAULT_CONFIG["state_size"])
    p.add_argument("--batch-size", type=int, default=DEFAULT_CONFIG["batch_size"])
    p.add_argument("--step", type=float, default=None, help="the nonlinear HRU's leapfrog step (default: the unit's)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mem-limit-mb", type=float, default=None, help="RLIMIT_AS for this process (optional)")
    p.add_argument("--no-remat-ff", action="store_true", help="store the feed-forward activations (HSSM remat_ff off)")
    p.add_argument("--rhel-chunk", type=int, default=None, help="RHEL's echo block size (default: the core's)")
    p.add_argument("--resync-every", type=int, default=None,
                   help="re-synchronise the symmetric RHEL methods' echo every K steps (default: plain)")  # fmt: skip
    p.add_argument("--compile-only", action="store_true", help="only compile; report XLA's memory analysis")
    return p


def cost_gradient(method: str, resync_every: int | None = None):
    """The gradient object whose cost is measured. The bench measures cost, `rhel gradcheck` fidelity: RHEL's
    contract checks run (the same cost) but warn rather than stop the measurement (the caller records the
    warnings); ``resync_every`` re-synchronises the symmetric RHEL methods (the others ignore it)."""
    from rhel.gradients.methods import GRADIENT_METHODS

    row = GRADIENT_METHODS[method]
    return row.make(resync_every=resync_every if row.symmetric else None, check="warn")


@contextlib.contextmanager
def recorded_contract_warnings():
    """Record the RHEL contract warnings raised inside the block (every occurrence, not only the first): yields a
    list that holds their distinct messages, sorted, once the block exits (a record's ``contract_warnings``)."""
    from rhel.energies import ContractWarning

    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ContractWarning)
        yield messages
    messages.extend(sorted({str(w.message) for w in caught if issubclass(w.category, ContractWarning)}))


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

    from rhel.training.config import DataConfig, GradientConfig, ModelConfig, OptimConfig, TrainConfig
    from rhel.training.experiment import build_model, load_dataset, make_optimizer, make_train_step

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
            step=args.step,
        ),
        optim=OptimConfig(batch_size=args.batch_size),
        # the config names a gradient method; the forward pass differentiates nothing, so any will do there
        gradient=GradientConfig(methods=("bptt" if args.method == FORWARD else args.method,)),
    ).validate()
    dataset = load_dataset(config, args.seed)
    model, state = build_model(config.model, dataset, key=jax.random.PRNGKey(args.seed))
    optimizer = make_optimizer(config.optim)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    x = jax.numpy.asarray(np.asarray(dataset.train.inputs[: args.batch_size], np.float32))
    y = jax.numpy.asarray(np.asarray(dataset.train.targets[: args.batch_size]))
    key = jax.random.PRNGKey(args.seed + 1)
    if args.method == FORWARD:
        step = _forward_step()
    else:
        gradient = cost_gradient(args.method, args.resync_every)
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

    def timed():
        t0 = time.perf_counter()
        run_once()
        return time.perf_counter() - t0

    with recorded_contract_warnings() as contract:
        # The memory is sampled during the first step (the warm-up; a single repeat, for long sequences, is timed
        # without one and is that step); the other timed steps run without the sampler, whose thread (a /proc read
        # every 2 ms on a 2-core machine) slowed an RHEL step at 8,192 steps by 5-7 %, the forward pass not
        # measurably.
        with RSSSampler() as sampler:
            first_s = timed()
        retained = current_rss_bytes()  # what the first step keeps (lazily created runtime state), not freed after it
        # a step shorter than the sampling interval may end between two samples: its peak is at least where it ends
        run_peak = max(sampler.peak, retained)
        warmup_s, times = (first_s, [timed() for _ in range(args.repeats)]) if args.repeats > 1 else (None, [first_s])
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
        "first_step_retained_mb": (retained - baseline) / mb,
        "peak_minus_import_mb": (peak - import_rss) / mb,
        "xla_memory": xla,
        "device": str(device),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if contract:
        record["contract_warnings"] = contract
        print(f"bench worker: {args.method} at {args.length} steps: {contract[0]}", file=sys.stderr)
    if gpu:
        record["device_peak_mb"] = device_bytes("peak_bytes_in_use") / mb
        record["memory_mb"] = (device_bytes("peak_bytes_in_use") - device_base) / mb
    else:
        record["memory_mb"] = (run_peak - baseline) / mb
    return record


def _forward_step():
    """The forward pass of a training step with the step's signature: the batch loss in training mode (dropout,
    batch statistics), nothing differentiated, nothing updated."""
    import equinox as eqx

    from rhel.models import batch_loss

    @eqx.filter_jit
    def forward(model, state, opt_state, x, y, mask, key):
        del opt_state
        loss, (metric, state) = batch_loss(model, state, x, y, key=key, mask=mask)
        return state, loss, metric

    return forward


def worker_main(argv: Sequence[str] | None = None) -> int:
    """Measure the configuration given on the command line and print its record as one JSON line."""
    args = _worker_parser().parse_args(argv)
    record = run_worker(args)
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
