"""Data-parallel training: 2 devices = 1 device, 2 processes = 1 process x 2 devices, resume on fewer devices,
seeds side by side = seeds one by one, and clear errors for settings that cannot work.

The runs happen in subprocesses with ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (two CPU devices); this
file is also the worker (``python tests/test_distributed.py JOBS.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rhel.training.config import DataConfig, TrainConfig, configure, save_config
from rhel.training.distributed import DataParallel, DistributedError, initialize, valid_batch_sizes

HERE = Path(__file__).resolve()
TWO_DEVICES = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}


def small_default(method: str = "rhel", steps: int = 20, seeds=(0,), float64: bool = False) -> TrainConfig:
    """The shipped default (its task, model and optimiser) on short sequences and a small split."""
    config = configure(None, methods=[method], steps=steps, eval_every=10, seeds=list(seeds), float64=float64)
    data = DataConfig(name=config.data.name, options={"length": 48, "n_train": 128, "n_val": 16, "n_test": 16})
    return dataclasses.replace(config, data=data)


def _env() -> dict[str, str]:
    src = str(HERE.parents[1] / "src")
    return {**os.environ, **TWO_DEVICES, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def _worker(jobs: list[dict], tmp_path: Path, timeout: float = 600) -> None:
    spec = tmp_path / f"jobs-{time.monotonic_ns()}.json"
    spec.write_text(json.dumps(jobs))
    done = subprocess.run([sys.executable, str(HERE), str(spec)], env=_env(), capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def _rhel_train(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "rhel", "train", "--no-progress", *args]
    return subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in lines]


def _params(run_dir: Path) -> list[np.ndarray]:
    with np.load(run_dir / "params.npz") as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def _assert_close_runs(a: Path, b: Path, rtol: float) -> None:
    ra, rb = _records(a), _records(b)
    assert len(ra) == len(rb) == 2
    for x, y in zip(ra, rb, strict=True):
        assert x.keys() == y.keys()
        for key in x:
            np.testing.assert_allclose(x[key], y[key], rtol=rtol, atol=0, err_msg=key)
    pa, pb = _params(a), _params(b)
    assert len(pa) == len(pb) > 10
    for x, y in zip(pa, pb, strict=True):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * float(np.max(np.abs(y)) + 1e-30))


@pytest.mark.parametrize("float64", [False, True], ids=["float32", "float64"])
def test_two_devices_equal_one_device(tmp_path, float64):
    methods = ("rhel", "bptt")
    jobs = [
        {"method": m, "devices": d, "out": str(tmp_path / f"{m}-{d}"), "float64": float64}
        for m in methods
        for d in (1, 2)
    ]
    _worker(jobs, tmp_path)
    for m in methods:
        _assert_close_runs(tmp_path / f"{m}-2", tmp_path / f"{m}-1", rtol=1e-12 if float64 else 1e-5)


def test_resume_on_fewer_devices_ends_where_the_uninterrupted_run_ends(tmp_path):
    full, resumed = str(tmp_path / "full"), str(tmp_path / "resumed")
    jobs = [
        {"method": "rhel", "devices": 2, "out": full, "float64": True},
        {"method": "rhel", "devices": 2, "out": resumed, "float64": True, "stop_after": 15},
        {"method": "rhel", "devices": 1, "out": resumed, "float64": True, "resume": True},
    ]
    _worker(jobs, tmp_path)
    assert json.loads((tmp_path / "resumed" / "final.json").read_text())["step"] == 20
    _assert_close_runs(tmp_path / "resumed", tmp_path / "full", rtol=1e-12)


def test_parallel_seeds_equal_sequential_seeds(tmp_path):
    jobs = [
        {"method": "rhel", "devices": 1, "seeds": [0, 1], "out": str(tmp_path / "sequential")},
        {"method": "rhel", "devices": 2, "seeds": [0, 1], "out": str(tmp_path / "parallel"), "parallel": True},
    ]
    _worker(jobs, tmp_path)
    for seed in (0, 1):
        a, b = tmp_path / "parallel" / f"seed{seed}", tmp_path / "sequential" / f"seed{seed}"
        assert _records(a) == _records(b)
        for x, y in zip(_params(a), _params(b), strict=True):
            np.testing.assert_array_equal(x, y)
    assert _params(tmp_path / "parallel" / "seed0")[0].tolist() != _params(tmp_path / "parallel" / "seed1")[0].tolist()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_two_devices(tmp_path):
    config = tmp_path / "tiny.toml"
    save_config(small_default(steps=10), config)
    common = ("--config", str(config), "--gradient", "rhel", "--eval-every", "5")
    one = _rhel_train(*common, "--devices", "2", "--out", str(tmp_path / "one"))
    # the multi-host command of docs/distributed.md, on localhost: one process per "host", one device each
    address = f"localhost:{_free_port()}"
    procs = [
        _rhel_train(
            *common,
            "--devices",
            "1",
            "--out",
            str(tmp_path / "two"),
            "--coordinator",
            address,
            "--num-processes",
            "2",
            "--process-id",
            str(i),
            "--coordinator-timeout",
            "60",
        )  # fmt: skip
        for i in (0, 1)
    ]
    outputs = [p.communicate(timeout=600) for p in (one, *procs)]
    for p, (_, err) in zip((one, *procs), outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "RHEL" in outputs[1][0] and "RHEL" not in outputs[2][0]  # process 0 prints the results, 1 not
    (a,) = (tmp_path / "one").glob("long_range_pattern-linear-rhel-seed0-*")  # the name ends in a settings digest
    b = tmp_path / "two" / a.name
    assert _records(a) == _records(b) and len(_records(b)) == 2  # one metrics file, written once
    ckpt = json.loads((b / "checkpoint.json").read_text())["file"]
    assert (a / ckpt).read_bytes() == (b / ckpt).read_bytes()  # identical parameters, state and Adam moments
    assert (tmp_path / "two" / "results.md").is_file()


def test_batch_that_does_not_divide_is_refused_with_the_sizes_that_would_work(tmp_path):
    p = _rhel_train("--devices", "2", "--batch-size", "7", "--steps", "2", "--out", str(tmp_path / "runs"))
    out, err = p.communicate(timeout=600)
    assert p.returncode == 2, err[-2000:]
    assert "batch size 7 does not divide over 2 devices" in err and "--batch-size 6 or 8" in err
    assert valid_batch_sizes(30, 4) == "28 or 32" and valid_batch_sizes(3, 4) == "4"


def test_bad_device_and_process_settings_are_refused(tmp_path):
    with pytest.raises(DistributedError, match=r"--devices 9: this process has 1 cpu device\(s\); use 1..1"):
        DataParallel.create(9)
    with pytest.raises(DistributedError, match=r"--process-id 2 is out of range for --num-processes 2; use 0..1"):
        initialize("localhost:1234", 2, 2)
    with pytest.raises(DistributedError, match="go together"):
        initialize("localhost:1234", 2)
    with pytest.raises(DistributedError, match="is not HOST:PORT"):
        initialize("localhost", 2, 1)
    started = time.monotonic()
    with pytest.raises(DistributedError, match=r"did not answer within 2 s"):
        initialize(f"localhost:{_free_port()}", 2, 1, timeout_s=2)
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------------------------------------- the worker


def _work(jobs: list[dict]) -> None:
    import equinox as eqx
    import jax

    from rhel.training.checkpoints import load_checkpoint
    from rhel.training.config import expand
    from rhel.training.distributed import run_seed_groups
    from rhel.training.experiment import build_model, load_dataset, make_optimizer
    from rhel.training.loop import train_run

    assert len(jax.devices()) == 2
    if any(job.get("float64") for job in jobs):
        jax.config.update("jax_enable_x64", True)

    def run(single, out, devices, job):
        train_run(single, out, progress=False, devices=devices, resume=job.get("resume", False),
                  stop_after=job.get("stop_after"))  # fmt: skip
        seed = single.seeds[0]
        dataset = load_dataset(single, seed)
        model, state = build_model(single.model, dataset, key=jax.random.split(jax.random.PRNGKey(seed), 3)[0])
        template = (model, state, make_optimizer(single.optim).init(eqx.filter(model, eqx.is_inexact_array)))
        arrays, _ = load_checkpoint(out, template)
        np.savez(Path(out) / "params.npz", *[np.asarray(a) for a in jax.tree.leaves(eqx.filter(arrays, eqx.is_array))])

    for job in jobs:
        config = small_default(job["method"], seeds=job.get("seeds", [0]), float64=job.get("float64", False))
        if "seeds" not in job:
            run(config, job["out"], job["devices"], job)
            continue
        run_seed_groups(
            expand(config),
            lambda single, devices, job=job: run(single, Path(job["out"]) / f"seed{single.seeds[0]}", devices, job),
            devices=job["devices"],
            parallel_seeds=job.get("parallel", False),
        )


if __name__ == "__main__":
    _work(json.loads(Path(sys.argv[1]).read_text()))
