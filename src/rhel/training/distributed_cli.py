"""The ``rhel train`` options for devices and processes (``--devices``, ``--coordinator`` ...), see
:mod:`rhel.training.distributed` and docs/distributed.md."""

from __future__ import annotations

import argparse

from rhel.training.distributed import initialize

__all__ = ["add_distributed_arguments", "start_processes"]


def add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--devices``, ``--parallel-seeds``, ``--coordinator``, ``--num-processes``, ``--process-id`` and
    ``--coordinator-timeout`` to a sub-command."""
    g = parser.add_argument_group("devices and processes (docs/distributed.md)")
    g.add_argument(
        "--devices", type=int, metavar="N",
        help="data parallelism over N of this process's devices, each global batch split across them "
        "(default: all that jax.devices() reports; on CPU see XLA_FLAGS=--xla_force_host_platform_device_count)",
    )  # fmt: skip
    g.add_argument(
        "--parallel-seeds", action="store_true",
        help="run the seeds side by side, one group of devices per seed, instead of one after another",
    )  # fmt: skip
    g.add_argument("--coordinator", metavar="HOST:PORT",
                   help="address of process 0 of a multi-process run (default: none, or SLURM/MPI's)")  # fmt: skip
    g.add_argument("--num-processes", type=int, metavar="N",
                   help="processes (hosts) in the run (default: 1, or SLURM/MPI's)")  # fmt: skip
    g.add_argument("--process-id", type=int, metavar="I",
                   help="this process's rank, 0..N-1; 0 writes the files (default: 0, or SLURM/MPI's)")  # fmt: skip
    g.add_argument(
        "--coordinator-timeout", type=int, default=120, metavar="S",
        help="seconds to wait for the coordinator and the other processes (default 120)",
    )  # fmt: skip


def start_processes(args: argparse.Namespace) -> bool:
    """Join the distributed run the options ask for (or a detected SLURM / MPI job); return whether this process
    writes the files (process 0, or the only process)."""
    import jax

    initialize(args.coordinator, args.num_processes, args.process_id, timeout_s=args.coordinator_timeout)
    return jax.process_index() == 0
