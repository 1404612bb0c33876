"""What every gradient method integrates: an HRU's energy with a linear drive and a linear read-out.

A unit hands a gradient method its static :class:`rhel.energies.Energy` (step size folded in) and the arrays

* ``theta``: the energy's parameters (a pytree; the step size is one of them, see :mod:`rhel.integrators`),
* ``drive``: a matrix ``B`` with ``f_k = B @ u_k``, or ``None`` for ``f_k = u_k``,
* ``readout``: a matrix ``C`` with ``y_k = C @ q_k`` (outputs read the positions after each step),
* ``inputs``: ``u``, shape ``(L, in)``, and the initial state ``(q0, p0)``.

Keeping the drive and the read-out linear and *outside* the per-step energy lets every method apply them to whole
blocks of steps as matrix products, and lets RHEL return the input gradient through ``B`` (the paper's Remark 8)
without ever storing the drive sequence. All arrays are explicit inputs of any custom VJP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from rhel._custom_types import Params
from rhel.energies import Energy
from rhel.integrators import leapfrog_step, linear_leapfrog_parallel


def drive_sequence(drive: Array | None, us: Float[Array, "L i"]) -> Array:
    """``f_k = B u_k`` for a whole block of steps (or ``u`` itself when there is no drive matrix)."""
    return us if drive is None else us @ drive.T


def pad_to_chunks(x: Array, chunk: int) -> Array:
    """Pad the time axis (axis 0) with zeros to a multiple of ``chunk`` and fold it to ``(chunks, chunk, ...)``.

    Zero inputs appended after the sequence do not change its outputs; their steps carry no loss.
    """
    length = x.shape[0]
    n = -(-length // chunk)
    x = jnp.pad(x, [(0, n * chunk - length)] + [(0, 0)] * (x.ndim - 1))
    return x.reshape(n, chunk, *x.shape[1:])


def over_blocks(body: Callable, carry: Any, length: int, chunk: int, *, reverse: bool = False) -> Any:
    """Run ``body(carry, start, size) -> carry`` over a sequence of ``length`` steps in consecutive blocks.

    The blocks are ``[k chunk, (k + 1) chunk)``, then a short one of ``length % chunk`` steps at the end (none if
    ``chunk`` divides ``length``); ``reverse`` runs them from the last (the short one) to the first. The full blocks
    run in a ``fori_loop`` (``start`` traced, ``size == chunk``), the short one after or before it (``start`` and
    ``size`` static); a single block runs without a loop. Nothing is padded or folded: ``body`` reads and writes its
    blocks in place, with ``jax.lax.dynamic_slice_in_dim`` and ``dynamic_update_slice_in_dim``, in the ``(L, ...)``
    arrays it carries. (Folding a sequence to ``(blocks, chunk, ...)`` for a ``scan`` makes XLA transpose it into a
    copy under ``vmap``, where the batch axis is in front; and the stacked outputs of a ``scan`` need another copy to
    become one sequence again.) A sequence that ``body`` overwrites should travel in ``carry``: XLA updates a loop's
    carry in place.
    """
    chunk = max(1, min(chunk, length))
    n, rest = divmod(length, chunk)

    def full(carry):
        if n == 1:
            return body(carry, 0, chunk)
        return jax.lax.fori_loop(0, n, lambda i, c: body(c, (n - 1 - i if reverse else i) * chunk, chunk), carry)

    def short(carry):
        return carry if rest == 0 else body(carry, n * chunk, rest)

    return full(short(carry)) if reverse else short(full(carry))


def resolve_scan(scan: str) -> str:
    """``"auto"`` picks the parallel scan on accelerators and the sequential one on CPU."""
    if scan not in ("auto", "sequential", "parallel"):
        raise ValueError(f"scan must be 'auto', 'sequential' or 'parallel', got {scan!r}")
    if scan == "auto":
        return "sequential" if jax.default_backend() == "cpu" else "parallel"
    return scan


def forward(
    energy: Energy,
    theta: Params,
    drive: Array | None,
    readout: Float[Array, "o n"],
    us: Float[Array, "L i"],
    q0: Float[Array, " n"],
    p0: Float[Array, " n"],
    *,
    chunk: int | None = None,
    remat: bool = False,
    scan: str = "sequential",
) -> tuple[Float[Array, "L o"], tuple[Array, Array]]:
    """Run the unit over the sequence; return the outputs ``(L, out)`` and the final state ``(q, p)``.

    The sequence is processed in blocks of ``chunk`` steps: the drive and the read-out of a block are matrix
    products, the leapfrog steps a ``lax.scan``. ``remat=True`` wraps each block in ``jax.checkpoint`` so that
    reverse-mode autodiff stores only the block boundaries (checkpointed BPTT). ``scan="parallel"`` uses the
    associative scan (linear energies only) for the whole sequence at once.
    """
    length = us.shape[0]
    if scan == "parallel":
        if energy.linear_coefficients is None:
            raise ValueError("scan='parallel' needs a linear energy (LinearHRU); use scan='sequential'")
        m, force = energy.linear_coefficients(theta)
        qs, ps = linear_leapfrog_parallel(m, force, drive_sequence(drive, us), q0, p0)
        return qs @ readout.T, (qs[-1], ps[-1])

    chunk = length if chunk is None else max(1, min(chunk, length))

    def step(state, f):
        q, p, _ = leapfrog_step(energy, *state, theta, f)
        return (q, p), q

    def block(state, u_block):
        state, qs = jax.lax.scan(step, state, drive_sequence(drive, u_block))
        return state, qs @ readout.T

    if remat:
        block = jax.checkpoint(block)
    if chunk == length:
        state, ys = block((q0, p0), us)
        return ys, state
    state, ys = jax.lax.scan(block, (q0, p0), pad_to_chunks(us, chunk))
    return ys.reshape(-1, ys.shape[-1])[:length], state
