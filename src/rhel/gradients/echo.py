"""The Hamiltonian echo, written once: flip the momenta, replay the drives in reverse, nudge, accumulate the rule.

Every RHEL gradient in the library -- the discrete HRUs' custom VJP (:mod:`rhel.gradients.rhel`) and the
continuous-time physical systems (:mod:`rhel.physics.echo`) -- is read from a few *echoes* of the forward pass:

1. each echo starts from the final state with its momenta flipped (plus an optional starting impulse);
2. it replays the forward drives in reverse with the integrator of the forward pass, *nudged* by ``eps_e``: a
   momentum impulse after the step (an HRU: ``eps_e C^T ybar``) and/or a force inside the step (a continuous-time
   system: ``eps_e grad loss``);
3. along the way it accumulates the integrator's learning rule, the ``theta``-gradient of the step's quadrature of
   ``integral H dt`` (paper Eq. 14), in the scan carry: no trajectory is stored.

The echoes of one estimator run batched (``vmap``) through one scan per block of steps, the blocks in a loop that
reads the forward pass's sequences in place; a block hook turns the per-step outputs into block-wise products (an
HRU's drive and read-out gradients) and writes them where the caller keeps them (an HRU's input gradient, over the
output cotangent the echo has consumed). The gradient is then a finite difference across the echoes,
``dL/dtheta = -(sum_e w_e acc_e + w_0 acc_0) / eps`` (:func:`difference_quotient`), with the weights of the estimator
table :data:`ESTIMATORS`; the initial-state gradient is read from where the echoes end
(:func:`initial_state_gradient`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from rhel._custom_types import Params
from rhel.gradients._core import over_blocks


@dataclasses.dataclass(frozen=True)
class Estimator:
    """A finite-difference estimator over echoes nudged by ``multipliers * eps``.

    The derivative estimate is ``(sum_e weights[e] * F(multipliers[e] * eps) + forward_weight * F(0)) / eps``,
    where ``F(0)`` is the un-nudged echo, which retraces the forward pass (so a digital implementation accumulates it
    during the forward pass, see :meth:`echoes`). ``reconstruction`` combines the echoes into an estimate of the
    forward states (for an HRU's read-out gradient). ``order`` is the power of ``eps`` in the estimator's bias.
    """

    name: str
    multipliers: tuple[float, ...]
    weights: tuple[float, ...]
    forward_weight: float
    reconstruction: tuple[float, ...]
    order: int

    @property
    def passes(self) -> int:
        """Number of passes over the sequence: the forward pass plus one per echo."""
        return 1 + len(self.multipliers)

    @property
    def symmetric(self) -> bool:
        """No un-nudged term (central, Richardson): exact on quadratic energies for every ``eps``, and the echoes'
        mean retraces the forward pass, so it can be re-synchronised on it."""
        return self.forward_weight == 0.0

    def echoes(self, *, with_forward: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(multipliers, weights)`` of the echoes to run; ``with_forward`` adds the un-nudged echo (multiplier 0,
        weight ``forward_weight``) when the estimator uses one, for systems that do not accumulate it forward."""
        if with_forward and self.forward_weight != 0.0:
            return (*self.multipliers, 0.0), (*self.weights, self.forward_weight)
        return self.multipliers, self.weights


ESTIMATORS: dict[str, Estimator] = {
    # the paper's estimator: F(+eps) - F(-eps), bias O(eps^2); 3 passes
    "central": Estimator("central", (1.0, -1.0), (0.5, -0.5), 0.0, (0.5, 0.5), 2),
    # the forward pass serves as the eps = 0 echo: F(eps) - F(0), bias O(eps); 2 passes
    "one_sided": Estimator("one_sided", (1.0,), (1.0,), -1.0, (1.0,), 1),
    # Richardson extrapolation of the central difference at eps and 2 eps, bias O(eps^4); 5 passes
    "richardson": Estimator(
        "richardson",
        (1.0, -1.0, 2.0, -2.0),
        (2 / 3, -2 / 3, -1 / 12, 1 / 12),
        0.0,
        (2 / 3, 2 / 3, -1 / 6, -1 / 6),
        4,
    ),
}


def get_estimator(name: str) -> Estimator:
    """The estimator called ``name``; a ValueError listing the choices otherwise."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown RHEL estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    return ESTIMATORS[name]


@dataclasses.dataclass(frozen=True)
class Nudge:
    """How an echo is nudged (each hook gets the echo's nudge ``eps_e`` and the step's replayed input ``x``).

    **Arguments:**

    - ``start``: a momentum impulse per unit ``eps`` added to the flipped final state (or ``None``).
    - ``impulse``: ``(eps_e, x) -> dp``, a momentum impulse added after the step (or ``None``).
    - ``force``: ``(eps_e, x) -> F``, with ``F(q)`` a force on the momenta inside the step (or ``None``).
    - ``readout``: ``(g, extra_e, x) -> g``, what the read-out of the rule does to it (device noise), or ``None``.
    """

    start: Array | None = None
    impulse: Callable[[Array, Any], Array] | None = None
    force: Callable[[Array, Any], Callable[[Array], Array]] | None = None
    readout: Callable[[Params, Any, Any], Params] | None = None


def echo(
    step: Callable,
    theta: Params,
    final_state: tuple[Float[Array, " n"], Float[Array, " n"]],
    eps_e: Float[Array, " E"],
    *,
    length: int,
    read: Callable,
    nudge: Nudge,
    emit: Callable,
    chunk: int | None = None,
    extra: PyTree = None,
    theta_per_echo: bool = False,
    block: Callable | None = None,
    carry: PyTree = None,
    anchor: Callable | None = None,
    reduce: Callable | None = None,
) -> tuple[Array, Array, Params, PyTree, PyTree]:
    """Run the echoes nudged by ``eps_e`` from ``final_state`` back over the ``length`` steps of the forward pass.

    The sequence is replayed in blocks of ``chunk`` steps (default: one block), from the last block to the first
    (:func:`rhel.gradients._core.over_blocks`); the caller's arrays are read block by block (``read``) and what a
    block produces is written into the caller's ``carry`` (``block``), in place: the echo makes no copy of a sequence.

    **Arguments:**

    - ``step``: ``(q, p, theta, x, force) -> (q1, p1, g_theta, g_x)``: one integrator step of one echo with its rule.
    - ``theta``: the energy's parameters (with a leading echo axis if ``theta_per_echo``).
    - ``final_state``: the forward pass's final ``(q, p)``; the echoes start from ``(q, -p)``.
    - ``eps_e``: the nudge of each echo, shape ``(E,)``.
    - ``length``: the number of steps of the forward pass.
    - ``read``: ``(carry, start, size) -> xs``: the per-step inputs of the steps ``start .. start + size - 1``
      (leading axis ``size``, forward order), e.g. the drives of a block as one matrix product.
    - ``nudge``: the :class:`Nudge`.
    - ``emit``: ``(q_start, q1, p1, g_x, acc) -> out``: what each echo step outputs (stacked per block, forward order).
    - ``chunk``: the block size in steps (default ``length``: one block).
    - ``extra``: a per-echo pytree (leading axis ``E``) handed to ``nudge.readout``.
    - ``block``: ``(carry, start, outs) -> carry`` run after each block on its outputs ``(size, E, ...)``, or
      ``(size, ...)`` with ``reduce``; without it the echo must run as one block, whose outputs are returned.
    - ``carry``: the initial carry of ``read``, ``block`` and ``anchor`` (the sequences they read and write).
    - ``anchor``: ``(carry, q, p, acc, start) -> (carry, q, p, acc)`` run after ``block`` at the start state of each
      block (where the echoes are once they have replayed it): re-synchronises the echoes (``RHEL(resync_every=K)``);
      it may also take the rules the echoes accumulated over the block into its carry (and return them zeroed).
    - ``reduce``: ``outs -> outs``, run in the loop on each step's outputs of all echoes (leading axis ``E``): e.g.
      the estimator's weighted sum over the echoes, so that a block's outputs hold one value per step instead of
      ``E`` (``None``: the outputs keep the echo axis).

    Returns ``(q_e, p_e, acc_e, carry, outs)``: where the echoes end, their accumulated rules (leading axis ``E``), the
    carry and, without ``block``, the stacked per-step outputs (forward order; ``None`` with ``block``).
    """
    q_T, p_T = final_state
    n_echo = eps_e.shape[0]
    q = jnp.broadcast_to(q_T, (n_echo, *q_T.shape))
    if nudge.start is None:
        p = jnp.broadcast_to(-p_T, (n_echo, *p_T.shape))
    else:
        p = -p_T[None] + eps_e[:, None] * nudge.start[None]

    def one(q, p, acc, th, eps, ex, x):
        force = None if nudge.force is None else nudge.force(eps, x)
        q1, p1, g_theta, g_x = step(q, p, th, x, force)
        if nudge.impulse is not None:
            p1 = p1 + nudge.impulse(eps, x)
        if nudge.readout is not None:
            g_theta = nudge.readout(g_theta, ex, x)
        acc = jax.tree_util.tree_map(jnp.add, acc, g_theta)
        return q1, p1, acc, emit(q, q1, p1, g_x, acc)

    batched = jax.vmap(one, in_axes=(0, 0, 0, 0 if theta_per_echo else None, 0, None if extra is None else 0, None))

    # The loop body is kept minimal (the per-step cost of a scan is what RHEL competes on): each echo accumulates its
    # own rule; ``reduce`` combines the per-step outputs over the echoes where they are made (an elementwise sum over
    # the E echoes fuses with the write of the output, which it halves; combined afterwards, a block's (size, E, n)
    # outputs would be written, then read back by a strided reduction, the slowest kernel of the echo on XLA CPU).
    def inner(state, x):
        q, p, acc = state
        q, p, acc, out = batched(q, p, acc, theta, eps_e, extra, x)
        return (q, p, acc), (out if reduce is None else reduce(out))

    def replay(state, start, size):  # one block, backwards in time; reverse=True stacks its outputs in forward order
        q, p, acc, carry = state
        (q, p, acc), outs = jax.lax.scan(inner, (q, p, acc), read(carry, start, size), reverse=True)
        return (q, p, acc, carry), outs

    if theta_per_echo:
        acc = jax.tree_util.tree_map(jnp.zeros_like, theta)
    else:
        acc = jax.tree_util.tree_map(lambda x: jnp.zeros((n_echo, *x.shape), x.dtype), theta)
    chunk = length if chunk is None else min(chunk, length)
    if block is None:
        if chunk != length:
            raise ValueError("echo: without a block hook the echo runs as one block (chunk = length)")
        (q, p, acc, carry), outs = replay((q, p, acc, carry), 0, length)
        return q, p, acc, carry, outs

    def body(state, start, size):
        (q, p, acc, carry), outs = replay(state, start, size)
        carry = block(carry, start, outs)
        if anchor is not None:
            carry, q, p, acc = anchor(carry, q, p, acc, start)
        return q, p, acc, carry

    q, p, acc, carry = over_blocks(body, (q, p, acc, carry), length, chunk, reverse=True)
    return q, p, acc, carry, None


def weighted(weights: Float[Array, " E"], tree: PyTree) -> PyTree:
    """``sum_e weights[e] * x[e]`` for every leaf (the echo axis is the leading one)."""
    return jax.tree_util.tree_map(lambda g: jnp.tensordot(weights, g, axes=1), tree)


def difference_quotient(eps: Array, tree: PyTree, forward: PyTree = None, forward_weight: float = 0.0) -> PyTree:
    """``-(x + forward_weight * x_0) / eps`` for every leaf: the gradient from the echoes' weighted rule ``x`` and,
    for an estimator with an un-nudged term, the same rule accumulated by the forward pass ``x_0``."""
    if forward is None:
        return jax.tree_util.tree_map(lambda g: -g / eps, tree)
    return jax.tree_util.tree_map(lambda g, g0: -(g + forward_weight * g0) / eps, tree, forward)


def initial_state_gradient(
    weights: Float[Array, " E"],
    eps: Array,
    q_e: Array,
    p_e: Array,
    initial_state: tuple[Array, Array] | None = None,
    forward_weight: float = 0.0,
) -> tuple[Array, Array]:
    """``(dL/dq0, dL/dp0)`` from where the echoes end (near the flipped initial state): their spread in momenta
    gives ``dL/dq0``, in positions ``dL/dp0``; the un-nudged term ends exactly at ``(q0, -p0)``."""
    dq_end, dp_end = weights @ q_e, weights @ p_e
    if initial_state is not None:
        q0, p0 = initial_state
        dq_end, dp_end = dq_end + forward_weight * q0, dp_end - forward_weight * p0
    return dp_end / eps, dq_end / eps
