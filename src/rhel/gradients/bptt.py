"""Backpropagation through time: reverse-mode autodiff through the unrolled integrator."""

from __future__ import annotations

import math

import equinox as eqx
from jaxtyping import Array, Float

from rhel._custom_types import Params
from rhel.energies import Energy
from rhel.gradients._core import forward
from rhel.gradients.base import AbstractGradient


class BPTT(AbstractGradient):
    """Plain backpropagation through time.

    JAX differentiates the forward scan (or the parallel scan) and stores what it needs from every step: memory
    grows linearly with the sequence length. The sequential scan runs in blocks of ``block`` steps so that the drive
    and read-out are matrix products per block (the fastest BPTT on CPU; it does not change what is stored).
    """

    block: int = eqx.field(default=256, static=True)

    def __check_init__(self):
        if not isinstance(self.block, int) or self.block < 1:
            raise ValueError(f"BPTT block must be a positive integer, got {self.block!r}")

    def solve(
        self,
        energy: Energy,
        theta: Params,
        drive: Array | None,
        readout: Array,
        us: Array,
        q0: Array,
        p0: Array,
        *,
        scan: str,
    ) -> Float[Array, "L o"]:
        return forward(energy, theta, drive, readout, us, q0, p0, chunk=self.block, scan=scan)[0]


class CheckpointedBPTT(AbstractGradient):
    """Backpropagation through time with rematerialisation.

    The sequence is cut into blocks of ``checkpoint_every`` steps (default ``ceil(sqrt(L))``); only the states at
    block boundaries are stored and each block is recomputed during the backward pass. Memory about ``2 sqrt(L)``
    states, at the price of one extra forward pass. Always uses the sequential scan.
    """

    checkpoint_every: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a positive integer, got {self.checkpoint_every}")

    def solve(
        self,
        energy: Energy,
        theta: Params,
        drive: Array | None,
        readout: Array,
        us: Array,
        q0: Array,
        p0: Array,
        *,
        scan: str,
    ) -> Float[Array, "L o"]:
        del scan
        chunk = self.checkpoint_every or math.ceil(math.sqrt(us.shape[0]))
        return forward(energy, theta, drive, readout, us, q0, p0, chunk=chunk, remat=True)[0]
