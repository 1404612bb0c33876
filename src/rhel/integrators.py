"""Reversible integrators of separable, time-reversal-invariant energies.

The Hamiltonian recurrent unit (HRU) of the paper (Eq. 9-10, 20) is the leapfrog / Stormer-Verlet integrator written
as three explicit sub-steps, *drift - kick - drift* with the position half-step first:

    q_{k+1/3} = q_k + 1/2 dT/dp(p_k)                 p_{k+1/3} = p_k
    q_{k+2/3} = q_{k+1/3}                            p_{k+2/3} = p_k - dV/dq(q_{k+1/3}, u_k)
    q_{k+1}   = q_{k+2/3} + 1/2 dT/dp(p_{k+2/3})     p_{k+1}   = p_{k+2/3}

The step size is folded into the energy: an HRU with step ``delta`` integrates ``delta * H`` with unit step, which is
the same map and lets ``delta`` (a scalar, or one step per channel as in LinOSS) be an ordinary energy parameter that
every gradient method differentiates. Energies are written as ``kinetic(p, theta)`` and ``potential(q, theta, f)``
where ``f`` is the drive of this step (the unit's input, possibly after a linear map).

The learning rule of RHEL reads ``grad_theta`` and ``grad_f`` of the *half-step energy* (paper Eq. 14)

    H_1/2 = 1/2 (H[k+1/3] + H[k+2/3]) = 1/2 T(p_k) + 1/2 T(p_{k+1}) + V(q_{k+1/3}, f),

evaluated at the sub-step states; :func:`leapfrog_step_with_rule` returns it together with the step, sharing the
energy evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Kinetic = Callable[[Array, Any], Array]
Potential = Callable[[Array, Any, Array], Array]


def leapfrog_step(
    kinetic: Kinetic, potential: Potential, q: Float[Array, " n"], p: Float[Array, " n"], theta: Any, f: Array
) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
    """One drift-kick-drift step of ``H = kinetic(p, theta) + potential(q, theta, f)`` with unit step."""
    dT = jax.grad(kinetic)
    q13 = q + 0.5 * dT(p, theta)
    p1 = p - jax.grad(potential)(q13, theta, f)
    q1 = q13 + 0.5 * dT(p1, theta)
    return q1, p1


def leapfrog_step_with_rule(
    kinetic: Kinetic, potential: Potential, q: Float[Array, " n"], p: Float[Array, " n"], theta: Any, f: Array
) -> tuple[Float[Array, " n"], Float[Array, " n"], Any, Array]:
    """One leapfrog step plus the gradients of the half-step energy ``H_1/2`` (Eq. 14) in ``theta`` and ``f``.

    Returns ``(q1, p1, dH_1/2/dtheta, dH_1/2/df)``. The sub-step states are constants of the rule: only the explicit
    dependence of the energy on ``theta`` and ``f`` is differentiated.
    """
    dT_p0, dT_th0 = jax.grad(kinetic, argnums=(0, 1))(p, theta)
    q13 = q + 0.5 * dT_p0
    dV_q, dV_th, dV_f = jax.grad(potential, argnums=(0, 1, 2))(q13, theta, f)
    p1 = p - dV_q
    dT_p1, dT_th1 = jax.grad(kinetic, argnums=(0, 1))(p1, theta)
    q1 = q13 + 0.5 * dT_p1
    g_theta = jax.tree_util.tree_map(lambda a, b, c: 0.5 * (a + b) + c, dT_th0, dT_th1, dV_th)
    return q1, p1, g_theta, dV_f


def linear_leapfrog_parallel(
    m: Float[Array, "n 2 2"],
    force: Float[Array, "n 2"],
    fs: Float[Array, "L n"],
    q0: Float[Array, " n"],
    p0: Float[Array, " n"],
) -> tuple[Float[Array, "L n"], Float[Array, "L n"]]:
    """All states of a *linear* leapfrog recurrence by a parallel (associative) scan.

    The per-channel map is ``(p, q)_{k+1} = m @ (p, q)_k + force * f_{k+1}`` (``m`` and ``force`` constant in time),
    which is what a quadratic energy with a linear drive gives (see :class:`rhel.LinearHRU`). Returns the positions
    and momenta after each step, shape ``(L, n)`` each. Work ``O(L log L)``, depth ``O(log L)``: the fast choice on
    accelerators; on CPU the sequential scan is usually faster.
    """
    length = fs.shape[0]
    b = force[None, :, :] * fs[:, :, None]  # (L, n, 2)
    # fold the initial state into the first forcing term
    b = b.at[0].add(jnp.einsum("nij,nj->ni", m, jnp.stack([p0, q0], axis=-1)))
    ms = jnp.broadcast_to(m, (length, *m.shape))

    def combine(left, right):
        m_l, b_l = left
        m_r, b_r = right
        return jnp.einsum("...ij,...jk->...ik", m_r, m_l), jnp.einsum("...ij,...j->...i", m_r, b_l) + b_r

    _, states = jax.lax.associative_scan(combine, (ms, b))
    return states[..., 1], states[..., 0]
