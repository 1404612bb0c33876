"""Data-parallel training over devices and hosts, with JAX's own distributed runtime.

No parameter server and no hand-written all-reduce: a :class:`jax.sharding.Mesh` with one axis, ``data``, spans the
chosen devices of every process; each global batch is a :class:`jax.Array` sharded along that axis (every process
builds only the shards of its own devices, from the same seeded batch indices), while the parameters, the BatchNorm
state, the optimiser state and the dropout key are replicated. The training step is the ordinary jitted step of
:mod:`rhel.training.experiment`: XLA partitions it and inserts the collectives, so the gradient is the mean over the
global batch and BatchNorm takes the statistics of the global batch, under RHEL, BPTT and checkpointed BPTT alike.

Several processes (hosts) are joined by :func:`initialize` (``jax.distributed.initialize``: gloo collectives on CPU,
NCCL on GPU). Process 0 alone writes files (:attr:`DataParallel.writer`); every process evaluates on a local copy of
the replicated model, so that early stopping decides the same everywhere.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import PyTree

from rhel.training.config import TrainConfig

#: The name of the mesh axis the batch is sharded over.
DATA_AXIS = "data"
#: Environment variables that make ``jax.distributed.initialize()`` worth calling without arguments.
_CLUSTER_SIZE_VARS = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")

__all__ = [
    "DATA_AXIS",
    "DataParallel",
    "DistributedError",
    "device_groups",
    "initialize",
    "run_seed_groups",
    "valid_batch_sizes",
]


class DistributedError(ValueError):
    """Settings for devices or processes that cannot work (too many devices, a batch that does not divide, ...)."""


# ---------------------------------------------------------------------------------------------- processes


def _wait_for_coordinator(host: str, port: int, timeout_s: float) -> None:
    # XLA aborts the whole process (no Python exception) when the coordinator cannot be reached, so a process other
    # than 0 first checks that something listens there.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(1.0, timeout_s)):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise DistributedError(
                    f"--coordinator {host}:{port} did not answer within {timeout_s:g} s ({error.strerror or error}); "
                    "start process 0 there first, or check the address and the port"
                ) from None
            time.sleep(0.2)


def _cluster_detected() -> bool:
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        return True
    return any(int(os.environ.get(name, "1") or 1) > 1 for name in _CLUSTER_SIZE_VARS)


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 120,
) -> bool:
    """Start JAX's distributed runtime when several processes are asked for or a cluster launcher is detected.

    Call it before anything else touches JAX (devices, arrays). Returns whether the runtime was started.

    **Arguments:**

    - `coordinator`: ``HOST:PORT`` of process 0 (it listens there; the others connect to it).
    - `num_processes`: how many processes take part.
    - `process_id`: this process's rank, ``0 .. num_processes - 1``.
    - `timeout_s`: how long to wait for the coordinator and the other processes before giving up with an error.

    With none of the three, ``jax.distributed.initialize()`` auto-detects its settings when a multi-task SLURM or
    Open MPI job (or ``JAX_COORDINATOR_ADDRESS``) is present; otherwise the run stays a single process.

    A process other than 0 that cannot reach the coordinator within ``timeout_s`` raises :class:`DistributedError`.
    Process 0 waits as long for the others; if they do not come, XLA's runtime ends the process with an error
    (``DEADLINE_EXCEEDED``), not a hang.
    """
    given = (coordinator, num_processes, process_id)
    if all(v is None for v in given):
        if not _cluster_detected():
            return False
        kwargs = {}
    else:
        if any(v is None for v in given):
            raise DistributedError(
                "--coordinator, --num-processes and --process-id go together; give all three (or none, under SLURM)"
            )
        host, _, port = coordinator.rpartition(":")
        if not host or not port.isdigit():
            raise DistributedError(f"--coordinator {coordinator!r} is not HOST:PORT (e.g. localhost:12355)")
        if num_processes < 1:
            raise DistributedError(f"--num-processes {num_processes}: must be at least 1")
        if not 0 <= process_id < num_processes:
            raise DistributedError(
                f"--process-id {process_id} is out of range for --num-processes {num_processes}; "
                f"use 0..{num_processes - 1}"
            )
        if process_id != 0:
            _wait_for_coordinator(host, int(port), timeout_s)
        kwargs = {"coordinator_address": coordinator, "num_processes": num_processes, "process_id": process_id}
    try:
        jax.distributed.initialize(**kwargs, initialization_timeout=timeout_s)
    except Exception as error:  # XLA raises its own runtime error types
        where = coordinator or "the auto-detected coordinator"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DistributedError(
            f"could not join the distributed run at {where} within {timeout_s} s ({first[:200]}); check that every "
            "process was started with the same --coordinator and --num-processes and that process 0 is running"
        ) from error
    return True


# ---------------------------------------------------------------------------------------------- devices


def _local_devices() -> list[jax.Device]:
    return sorted(jax.local_devices(), key=lambda d: d.id)


def _check_count(devices: int, available: int) -> None:
    if not 1 <= devices <= available:
        hint = (
            f"; on CPU, XLA_FLAGS=--xla_force_host_platform_device_count={devices} makes {devices} host devices"
            if jax.default_backend() == "cpu"
            else ""
        )
        raise DistributedError(
            f"--devices {devices}: this process has {available} {jax.default_backend()} device(s); "
            f"use 1..{available}{hint}"
        )


def device_groups(groups: int, devices: int | None = None) -> list[list[jax.Device]]:
    """Split this process's first ``devices`` devices (default: all) into ``groups`` equal groups of consecutive
    devices (the remainder is left idle); for running seeds side by side."""
    local = _local_devices()
    count = len(local) if devices is None else devices
    _check_count(count, len(local))
    groups = max(1, min(groups, count))
    size = count // groups
    return [local[i * size : (i + 1) * size] for i in range(groups)]


def valid_batch_sizes(batch_size: int, devices: int) -> str:
    """The multiples of ``devices`` nearest to ``batch_size``, for error messages."""
    below = (batch_size // devices) * devices
    sizes = [s for s in (below, below + devices) if s > 0]
    return " or ".join(map(str, sizes))


@dataclass(frozen=True)
class DataParallel:
    """Where a run's arrays live: a one-axis ``data`` mesh, replicated parameters and a sharded batch.

    Build it with :meth:`create`. With one device and one process it is :attr:`trivial` and places nothing (the
    run is the single-device run it always was).
    """

    mesh: Mesh

    @classmethod
    def create(cls, devices: int | Sequence[jax.Device] | None = None) -> DataParallel:
        """The mesh over ``devices``: a count of this process's devices (default: all of them; with several
        processes, the same count on each) or an explicit list of local devices (single process only)."""
        if devices is None or isinstance(devices, int):
            local = _local_devices()
            count = len(local) if devices is None else devices
            _check_count(count, len(local))
            everyone = [
                d
                for p in range(jax.process_count())
                for d in sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)[:count]
            ]
        else:
            everyone = list(devices)
            if not everyone:
                raise DistributedError("an empty list of devices")
        return cls(Mesh(np.array(everyone), (DATA_AXIS,)))

    @property
    def size(self) -> int:
        """The number of devices (over all processes)."""
        return self.mesh.size

    @property
    def trivial(self) -> bool:
        """JAX's default device alone, in one process: nothing to place."""
        return self.size == 1 and jax.process_count() == 1 and self.mesh.devices.flat[0] == _local_devices()[0]

    @property
    def writer(self) -> bool:
        """Whether this process writes the run's files (process 0)."""
        return jax.process_index() == 0

    def check_batch(self, batch_size: int) -> None:
        """Raise :class:`DistributedError` unless the global batch divides evenly over the devices."""
        if batch_size % self.size:
            raise DistributedError(
                f"batch size {batch_size} does not divide over {self.size} devices; use a multiple of {self.size} "
                f"(e.g. --batch-size {valid_batch_sizes(batch_size, self.size)}) or other --devices"
            )

    def _place(self, tree: PyTree, spec: PartitionSpec) -> PyTree:
        if self.trivial:
            return tree
        sharding = NamedSharding(self.mesh, spec)

        def put(leaf):
            if not eqx.is_array(leaf):
                return leaf
            host = np.asarray(leaf)
            return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

        return jax.tree.map(put, tree)

    def replicate(self, tree: PyTree) -> PyTree:
        """Every array of ``tree`` (identical in every process) copied onto every device of the mesh."""
        return self._place(tree, PartitionSpec())

    def shard(self, tree: PyTree) -> PyTree:
        """Every array of ``tree`` (the global batch, identical in every process) split along its first axis; each
        process transfers only the rows of its own devices."""
        return self._place(tree, PartitionSpec(DATA_AXIS))

    def local(self, tree: PyTree) -> PyTree:
        """A single-device copy of a replicated ``tree`` (for evaluation and saving, in any process)."""
        if self.trivial:
            return tree

        def get(leaf):
            return leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf

        return jax.tree.map(get, tree)


# ---------------------------------------------------------------------------------------------- seeds side by side


def run_seed_groups(
    runs: Sequence[TrainConfig],
    run_one: Callable[[TrainConfig, int | list[jax.Device] | None], None],
    *,
    devices: int | None = None,
    parallel_seeds: bool = False,
) -> None:
    """Call ``run_one(run, devices)`` for every single-run config, one after another, or with ``parallel_seeds``
    side by side: the devices are split into one group per seed (at most one group per device), each group runs
    its seeds' runs in order in its own thread. A run's numbers do not depend on which group runs it (with groups
    of one device they are those of the sequential single-device run).

    **Arguments:**

    - `runs`: single-run configs (see :func:`rhel.training.config.expand`).
    - `run_one`: trains one of them on the given devices (a count, a list of local devices, or ``None``: all).
    - `devices`: how many of this process's devices to use (default: all).
    - `parallel_seeds`: run different seeds side by side (single process only).
    """
    seeds = list(dict.fromkeys(run.seeds[0] for run in runs))
    if not parallel_seeds or len(seeds) < 2:
        for run in runs:
            run_one(run, devices)
        return
    if jax.process_count() > 1:
        raise DistributedError("--parallel-seeds works within one process; drop it for a multi-process run")
    groups = device_groups(len(seeds), devices)
    assigned = {seed: i % len(groups) for i, seed in enumerate(seeds)}

    def work(g: int) -> None:
        for run in runs:
            if assigned[run.seeds[0]] == g:
                run_one(run, groups[g])

    with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="rhel-seeds") as pool:
        for future in [pool.submit(work, g) for g in range(len(groups))]:
            future.result()
