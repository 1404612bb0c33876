"""``rhel bench --devices N``: training throughput on 1..N devices at a fixed per-device batch (data parallelism).

One fresh process (``python -m rhel.reports.bench_scaling``) measures every device count and method, with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` on CPU so that a CPU-only machine has N host devices. The
step is ``rhel train``'s own (:func:`rhel.training.experiment.make_train_step`), placed as ``rhel train --devices n``
places it (:class:`rhel.training.distributed.DataParallel`: replicated parameters, batch sharded over the ``data``
axis). Throughput is ``global batch / median step time`` in sequences per second; compile time is excluded.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["format_scaling", "run_scaling"]


def run_scaling(
    config: dict[str, Any], *, devices: int, methods: Sequence[str], length: int, repeats: int = 3, timeout_s=600.0
) -> dict[str, Any]:
    """Measure in a fresh process; return ``{"config", "length", "devices", "backend", "records"}``.

    **Arguments:**

    - `config`: ``model``, ``num_blocks``, ``hidden``, ``state_size`` and ``batch_size`` (per device).
    - `devices`: the largest device count (1..``devices`` are measured).
    - `methods`: gradient-method names.
    - `length`: the sequence length.
    - `repeats`: timed steps per (method, device count); the median is reported.
    - `timeout_s`: for the whole measurement.
    """
    import jax

    env = dict(os.environ)
    if jax.default_backend() == "cpu":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    elif len(jax.local_devices()) < devices:
        raise ValueError(f"--devices {devices}: this machine has {len(jax.local_devices())} {jax.default_backend()} "
                         f"device(s); use 1..{len(jax.local_devices())}")  # fmt: skip
    job = {"config": config, "devices": devices, "methods": list(methods), "length": length, "repeats": repeats}
    done = subprocess.run([sys.executable, "-m", "rhel.reports.bench_scaling", json.dumps(job)], env=env,
                          capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the scaling worker failed: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(job: dict[str, Any]) -> dict[str, Any]:
    import equinox as eqx
    import jax
    import numpy as np

    from rhel.reports.bench_worker import cost_gradient, recorded_contract_warnings
    from rhel.training.config import DataConfig, ModelConfig, OptimConfig, TrainConfig
    from rhel.training.distributed import DataParallel
    from rhel.training.experiment import build_model, load_dataset, make_optimizer, make_train_step

    c, records = job["config"], []
    top = job["devices"] * c["batch_size"]
    config = TrainConfig(
        data=DataConfig(
            "long_range_pattern", options={"length": job["length"], "n_train": top, "n_val": 1, "n_test": 1}
        ),
        model=ModelConfig(
            unit=c["model"],
            num_blocks=c["num_blocks"],
            hidden=c["hidden"],
            state_size=c["state_size"],
            step=c.get("step"),
        ),
        optim=OptimConfig(batch_size=top),
    ).validate()
    dataset = load_dataset(config, 0)
    model, state = build_model(config.model, dataset, key=jax.random.PRNGKey(0))
    optimizer = make_optimizer(config.optim)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    inputs, targets = np.asarray(dataset.train.inputs, np.float32), np.asarray(dataset.train.targets)
    for method in job["methods"]:
        step = make_train_step(optimizer, cost_gradient(method, c.get("resync_every")), 1.0)
        for n in range(1, job["devices"] + 1):
            placement = DataParallel.create(n)
            batch = n * c["batch_size"]
            args = (*placement.replicate((model, state, opt_state)),
                    *placement.shard((inputs[:batch], targets[:batch])), None,
                    placement.replicate(jax.random.PRNGKey(1)))  # fmt: skip
            compiled = step.lower(*args).compile()
            times = []
            with recorded_contract_warnings() as contract:
                jax.block_until_ready(compiled(*args))
                for _ in range(job["repeats"]):
                    t0 = time.perf_counter()
                    jax.block_until_ready(compiled(*args))
                    times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            records.append({"method": method, "devices": n, "global_batch": batch, "step_time_s": median,
                            "times_s": times, "sequences_per_s": batch / median})  # fmt: skip
            if contract:
                records[-1]["contract_warnings"] = contract
    for r in records:
        one = next(o for o in records if o["method"] == r["method"] and o["devices"] == 1)
        r["speedup"] = r["sequences_per_s"] / one["sequences_per_s"]
        r["efficiency"] = r["speedup"] / r["devices"]
    return {**job, "backend": jax.default_backend(), "device_kind": jax.devices()[0].device_kind, "records": records,
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}  # fmt: skip


def format_scaling(report: dict[str, Any]) -> str:
    """The report as a markdown table, one row per method and device count."""
    from rhel.reports.bench_tables import CONTRACT_FOOTNOTE, method_label

    c = report["config"]
    lines = [
        f"{c['model']} HSSM ({c['num_blocks']} block(s), hidden {c['hidden']}, state {c['state_size']}), length "
        f"{report['length']}, {c['batch_size']} sequence(s) per device, {report['backend']} "
        f"({report['device_kind']}), median of {report['repeats']} step(s)",
        "",
        "| method | devices | global batch | step (s) | sequences/s | speed-up | efficiency |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["records"]:
        mark = "*" if r.get("contract_warnings") else ""
        lines.append(f"| {method_label(r['method'], c)}{mark} | {r['devices']} | {r['global_batch']} | "
                     f"{r['step_time_s']:.4f} | {r['sequences_per_s']:.1f} | {r['speedup']:.2f} | "
                     f"{r['efficiency']:.2f} |")  # fmt: skip
    if any(r.get("contract_warnings") for r in report["records"]):
        lines += ["", CONTRACT_FOOTNOTE]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(json.dumps(_measure(json.loads(sys.argv[1]))), flush=True)
