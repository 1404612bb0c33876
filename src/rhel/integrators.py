r"""Reversible integrators of time-reversal-invariant energies, and the half-step learning rule of RHEL.

**Leapfrog** (Störmer-Verlet) for separable energies ``H = T(p) + V(q, f)``, the Hamiltonian recurrent unit of the
paper (Eq. 9-10, 20): three explicit sub-steps, *drift - kick - drift* with the position half-step first, of step
``dt``:

    q_{k+1/2} = q_k + dt/2 dT/dp(p_k)
    p_{k+1}   = p_k - dt (dV/dq(q_{k+1/2}, f_k) - F(q_{k+1/2}))
    q_{k+1}   = q_{k+1/2} + dt/2 dT/dp(p_{k+1})

``F`` is an optional position-dependent *force* (the nudge of a continuous-time echo, ``eps * grad loss``). An HRU
folds its step into the energy (it integrates ``step * H`` with ``dt = 1``), which lets the step (a scalar, or one per
channel as in LinOSS) be an ordinary energy parameter that every gradient method differentiates; a physical system
passes ``dt``. Optional linear *friction* ``gamma`` (``dp/dt -= gamma dT/dp``) is split symmetrically around the step
as two half-steps, each solved by the implicit midpoint rule, so that ``-gamma`` undoes ``+gamma`` (an anti-damped
echo retraces a damped run).

**Implicit midpoint** for non-separable energies ``H(q, p, f)``: symmetric and symplectic, reversible under the
momentum flip for a time-reversal-invariant ``H``, solved with a fixed number of fixed-point or Newton iterations.

**The half-step rule** (paper Eq. 14). RHEL reads ``grad_theta`` and ``grad_f`` of the step's quadrature of
``integral H dt``; for the leapfrog the half-step energy

    dt H_1/2 = dt (1/2 T(p_k) + V(q_{k+1/2}, f) + 1/2 T(p_{k+1})),

for the midpoint rule ``dt H(q_m, p_m)`` at the midpoint. :meth:`AbstractIntegrator.step_with_rule` (and
:func:`leapfrog_step` with ``rule=True``) return it together with the step, sharing the energy evaluations; the
sub-step states are constants of the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from rhel._custom_types import Params

if TYPE_CHECKING:  # energies.py builds on this module (its contract check runs the leapfrog)
    from rhel.energies import Energy

Force = Callable[[Array], Array]
Step = float | Array


def _scaled(dt: Step, x: PyTree[Array]) -> PyTree[Array]:
    """``dt * x`` (leaves of a pytree), skipped for the unit step of an HRU (whose step is in its energy)."""
    if isinstance(dt, (int, float)) and dt == 1.0:
        return x
    return jax.tree_util.tree_map(lambda a: dt * a, x)


def _friction(energy: Energy, theta: Params, p: Array, gamma: Array, h: Step, iterations: int) -> Array:
    """A half-step ``h`` of ``dp/dt = -gamma dT/dp`` by the implicit midpoint rule (fixed-point iterations)."""
    grad_t = jax.grad(energy.kinetic)

    def it(_, p1):
        return p - h * gamma * grad_t(0.5 * (p + p1), theta)

    return jax.lax.fori_loop(0, iterations, it, p)


def _leapfrog(energy, q, p, theta, f, dt, force, friction, friction_iters, rule):
    if friction is not None:
        p = _friction(energy, theta, p, friction, 0.5 * dt, friction_iters)
    h = 0.5 * dt
    if rule:
        dT_p0, dT_th0 = jax.grad(energy.kinetic, argnums=(0, 1))(p, theta)
        q_half = q + h * dT_p0
        dV_q, dV_th, dV_f = jax.grad(energy.potential, argnums=(0, 1, 2))(q_half, theta, f)
    else:
        q_half = q + h * jax.grad(energy.kinetic)(p, theta)
        dV_q = jax.grad(energy.potential)(q_half, theta, f)
    kick = dV_q if force is None else dV_q - force(q_half)
    p1 = p - _scaled(dt, kick)
    if rule:
        dT_p1, dT_th1 = jax.grad(energy.kinetic, argnums=(0, 1))(p1, theta)
    else:
        dT_p1 = jax.grad(energy.kinetic)(p1, theta)
    q1 = q_half + h * dT_p1
    if friction is not None:
        p1_out = _friction(energy, theta, p1, friction, 0.5 * dt, friction_iters)
    else:
        p1_out = p1
    if not rule:
        return q1, p1_out, q_half
    g_theta = jax.tree_util.tree_map(lambda a, b, c: 0.5 * (a + b) + c, dT_th0, dT_th1, dV_th)
    return q1, p1_out, q_half, _scaled(dt, g_theta), _scaled(dt, dV_f)


def leapfrog_step(
    energy: Energy,
    q: Float[Array, " n"],
    p: Float[Array, " n"],
    theta: Params,
    f: Array,
    *,
    dt: Step = 1.0,
    force: Force | None = None,
    friction: Array | None = None,
    friction_iters: int = 6,
    rule: bool = False,
) -> tuple[Array, Array, Array] | tuple[Array, Array, Array, Params, Array]:
    """One drift-kick-drift step of a separable ``energy``; returns ``(q1, p1, q_half)``, and with ``rule`` also the
    gradients of the half-step energy ``dt H_1/2`` (Eq. 14) in ``theta`` and ``f``.

    **Arguments:**

    - ``energy``: a separable :class:`rhel.energies.Energy`; ``theta`` its parameters, ``f`` the step's drive.
    - ``q``, ``p``: the state before the step.
    - ``dt``: the time step (``1.0`` for an HRU, whose step is folded into its energy).
    - ``force``: an extra position-dependent force ``F(q)`` on the momenta, applied in the kick (or ``None``).
    - ``friction``: the friction coefficient ``gamma`` (``None``: none, and nothing of it is traced).
    - ``friction_iters``: fixed-point iterations of each friction half-step.
    - ``rule``: also return ``(d(dt H_1/2)/dtheta, d(dt H_1/2)/df)``. The sub-step states are constants of the rule:
      only the explicit dependence of the energy on ``theta`` and ``f`` is differentiated. With friction the rule
      reads the momenta inside the friction half-steps.
    """
    return _leapfrog(energy, q, p, theta, f, dt, force, friction, friction_iters, rule)


class AbstractIntegrator(eqx.Module):
    """A reversible integrator: one step of an energy with an optional nudge force and friction, and its rule."""

    def check(self, energy: Energy) -> None:
        """Raise :class:`rhel.energies.ContractError` if this integrator cannot integrate ``energy``."""

    def step(self, energy, q, p, theta, f, *, dt, force=None, friction=None):  # pragma: no cover - interface
        """Advance one step; returns ``(q1, p1, q_loss)`` with ``q_loss`` the positions where a loss is sampled."""
        raise NotImplementedError

    def step_with_rule(self, energy, q, p, theta, f, *, dt, force=None, friction=None):  # pragma: no cover
        """:meth:`step` plus the gradients of the step's quadrature of ``integral H dt`` in ``theta`` and ``f``."""
        raise NotImplementedError


class Leapfrog(AbstractIntegrator):
    """The Störmer-Verlet leapfrog (:func:`leapfrog_step`) for separable energies; losses sampled at ``q_half``.

    **Arguments:**

    - ``friction_iters``: fixed-point iterations of each friction half-step (only used with friction).
    """

    friction_iters: int = eqx.field(static=True, default=6)

    def check(self, energy: Energy) -> None:
        energy.require_separable("Leapfrog", "use ImplicitMidpoint for a non-separable one")

    def step(self, energy, q, p, theta, f, *, dt, force=None, friction=None):
        return leapfrog_step(
            energy, q, p, theta, f, dt=dt, force=force, friction=friction, friction_iters=self.friction_iters
        )

    def step_with_rule(self, energy, q, p, theta, f, *, dt, force=None, friction=None):
        return leapfrog_step(
            energy, q, p, theta, f, dt=dt, force=force, friction=friction, friction_iters=self.friction_iters, rule=True
        )


class ImplicitMidpoint(AbstractIntegrator):
    r"""The implicit midpoint rule for any (non-separable) energy:

    ``z1 = z0 + dt F((z0 + z1) / 2)`` with ``F(q, p) = (dH/dp, -dH/dq + force(q) - gamma dH/dp)``, solved from an
    explicit-Euler guess with a fixed number of ``iterations`` (so ``jax.grad`` differentiates through it) of the
    fixed-point map (default; contracts by about ``dt omega / 2`` per iteration, so 12 iterations reach float64
    precision for ``dt omega <~ 0.1``) or of Newton's method (``solver="newton"``: robust for stiff steps, heavier to
    compile). Losses are sampled, and the rule ``dt H(z_m)`` read, at the midpoint ``z_m = (z0 + z1) / 2``.

    **Arguments:**

    - ``iterations``: solver iterations per step.
    - ``solver``: ``"fixed-point"`` or ``"newton"``.
    """

    iterations: int = eqx.field(static=True, default=12)
    solver: str = eqx.field(static=True, default="fixed-point")

    def __check_init__(self):
        if self.solver not in ("fixed-point", "newton"):
            raise ValueError(f"ImplicitMidpoint solver must be 'fixed-point' or 'newton', not {self.solver!r}")

    def _solve(self, energy, q, p, theta, f, dt, force, friction):
        n = q.shape[0]

        def field(z):
            g = jax.grad(lambda w: energy(w[:n], w[n:], theta, f))(z)
            dp = -g[:n] if force is None else -g[:n] + force(z[:n])
            if friction is not None:
                dp = dp - friction * g[n:]
            return jnp.concatenate([g[n:], dp])

        z0 = jnp.concatenate([q, p])

        def residual(z1):
            return z1 - z0 - dt * field(0.5 * (z0 + z1))

        if self.solver == "newton":

            def update(_, z1):
                return z1 - jnp.linalg.solve(jax.jacfwd(residual)(z1), residual(z1))

        else:

            def update(_, z1):
                return z0 + dt * field(0.5 * (z0 + z1))

        z1 = jax.lax.fori_loop(0, self.iterations, update, z0 + dt * field(z0))
        zm = 0.5 * (z0 + z1)
        return z1[:n], z1[n:], zm[:n], zm[n:]

    def step(self, energy, q, p, theta, f, *, dt, force=None, friction=None):
        q1, p1, qm, _ = self._solve(energy, q, p, theta, f, dt, force, friction)
        return q1, p1, qm

    def step_with_rule(self, energy, q, p, theta, f, *, dt, force=None, friction=None):
        q1, p1, qm, pm = self._solve(energy, q, p, theta, f, dt, force, friction)
        g_theta, g_f = jax.grad(lambda th, u: dt * energy(qm, pm, th, u), argnums=(0, 1))(theta, f)
        return q1, p1, qm, g_theta, g_f


def default_integrator(energy: Energy) -> AbstractIntegrator:
    """:class:`Leapfrog` for a separable energy, :class:`ImplicitMidpoint` otherwise."""
    return Leapfrog() if energy.separable else ImplicitMidpoint()


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
