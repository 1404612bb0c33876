r"""Reversible symplectic integrators for (possibly driven, nudged, damped) Hamiltonian dynamics.

One step advances :math:`\Phi_k = (\phi_k, \pi_k)` to :math:`\Phi_{k+1}` over :math:`[t_k, t_k + \delta]` for
the *effective* energy

.. math::
    H_\varepsilon(\phi, \pi) = H(\phi, \pi; \theta, u) - \varepsilon\, \ell(\phi, y),

with the input :math:`u` and target :math:`y` sampled at the step's midpoint time :math:`t_{k+1/2}`. The
forward pass uses :math:`\varepsilon = 0`; the nudged echo of paper Eq. 6, :math:`\partial_t\Phi^e = J\nabla H
- \varepsilon J\nabla\ell`, is exactly the flow of :math:`H_\varepsilon` (for a position-only loss it adds the
force :math:`+\varepsilon\nabla_\phi\ell` to :math:`\partial_t\pi`). Optional linear friction adds
:math:`-\gamma\nabla_\pi H` to :math:`\partial_t\pi`.

Each integrator also fixes the **quadrature** used for every time integral over a step (the loss
:math:`\int\ell\,dt`, and the RHEL read-out :math:`\int\nabla_\theta H\,dt`), through :meth:`action` (the
step's quadrature of :math:`\int H\,dt`, whose :math:`\theta`-gradient is the read-out increment) and
:meth:`loss_position` (the node where :math:`\ell` is sampled, weight :math:`\delta`).

* :class:`Leapfrog` (Störmer-Verlet, drift-kick-drift) for separable :math:`H = T(\pi) + V(\phi, u)`. Without
  friction it is a composition of exact flows of :math:`T` and :math:`V`, hence exactly reversible under the
  momentum flip and, with the loss sampled at the kick (:math:`\phi_{k+1/2}`), RHEL on it equals the exact
  gradient of the discrete loss as :math:`\varepsilon \to 0` (the continuous Theorem 3.1 applied to the
  switched flow; cf. paper Thm 3.2).
* :class:`ImplicitMidpoint` for non-separable :math:`H`: symmetric and symplectic, reversible under the
  momentum flip for a time-reversal-invariant :math:`H`; solved with a fixed number of fixed-point or Newton
  iterations (differentiable by ``jax.grad``).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from rhel.physics.systems import HamiltonianSystem, PhysicsError

__all__ = ["Integrator", "Leapfrog", "ImplicitMidpoint", "default_integrator"]

Vec = Float[Array, " n"]


class Integrator(eqx.Module):
    """Interface: ``step``, ``action``, ``loss_position``, ``check``."""

    def check(self, system: HamiltonianSystem) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def step(self, system, theta, phi, pi, u, y, eps, gamma, dt):  # pragma: no cover - interface
        """Advance one step; returns ``(phi1, pi1, nodes)`` (``nodes``: what ``action`` and ``loss_position``
        read). ``gamma=None`` means no friction (statically: the friction code is not traced)."""
        raise NotImplementedError

    def action(self, system, theta, nodes, u, dt):  # pragma: no cover - interface
        r"""The step's quadrature of :math:`\int_{t_k}^{t_{k+1}} H\,dt` at the step's nodes (a function of
        theta)."""
        raise NotImplementedError

    def loss_position(self, nodes):  # pragma: no cover - interface
        r"""Positions at which :math:`\ell` is sampled; :math:`\int \ell\,dt \approx \delta\sum_k
        \ell(\cdot)`."""
        raise NotImplementedError


class Leapfrog(Integrator):
    r"""Störmer-Verlet drift-kick-drift for separable energies (paper Eq. 20):

    .. math::
        \phi_{k+1/2} = \phi_k + \tfrac{\delta}{2}\nabla_\pi T(\pi_k),\quad
        \pi_{k+1} = \pi_k - \delta\big(\nabla_\phi V(\phi_{k+1/2}, u_{k+1/2})
                     - \varepsilon \nabla_\phi \ell(\phi_{k+1/2}, y_{k+1/2})\big),\quad
        \phi_{k+1} = \phi_{k+1/2} + \tfrac{\delta}{2}\nabla_\pi T(\pi_{k+1}).

    Quadrature: :math:`\int H\,dt \approx \delta\,[\tfrac12 T(\pi_k) + V(\phi_{k+1/2}) + \tfrac12
    T(\pi_{k+1})]` (the paper's :math:`H_{1/2}`, Eq. 14), :math:`\int\ell\,dt \approx
    \delta\,\ell(\phi_{k+1/2})` (midpoint rule).

    Friction (when ``gamma != 0``) is split symmetrically around the leapfrog step as two half-steps of
    :math:`\partial_t\pi = -\gamma\nabla_\pi T`, each solved by the implicit midpoint rule with
    ``friction_iters`` fixed-point iterations (so that ``-gamma`` undoes ``+gamma``: an anti-damped echo can
    retrace a damped run).
    """

    friction_iters: int = eqx.field(static=True, default=6)

    def check(self, system: HamiltonianSystem) -> None:
        if not system.separable:
            raise PhysicsError(
                f"{system.name}: Leapfrog needs a separable energy H = T(pi) + V(phi); "
                "use ImplicitMidpoint for a non-separable one"
            )

    def _friction(self, system, theta, pi, gamma, h):
        grad_t = jax.grad(system.kinetic)

        def it(_, p1):
            return pi - h * gamma * grad_t(0.5 * (pi + p1), theta)

        return jax.lax.fori_loop(0, self.friction_iters, it, pi)

    def step(self, system, theta, phi, pi, u, y, eps, gamma, dt):
        grad_t = jax.grad(system.kinetic)
        grad_v = jax.grad(system.potential)
        grad_l = jax.grad(system.loss)
        pi_a = pi if gamma is None else self._friction(system, theta, pi, gamma, 0.5 * dt)
        phi_h = phi + 0.5 * dt * grad_t(pi_a, theta)
        pi_b = pi_a - dt * (grad_v(phi_h, theta, u) - eps * grad_l(phi_h, y))
        phi1 = phi_h + 0.5 * dt * grad_t(pi_b, theta)
        pi1 = pi_b if gamma is None else self._friction(system, theta, pi_b, gamma, 0.5 * dt)
        return phi1, pi1, (pi_a, phi_h, pi_b)

    def action(self, system, theta, nodes, u, dt):
        pi_a, phi_h, pi_b = nodes
        return dt * (
            0.5 * system.kinetic(pi_a, theta) + system.potential(phi_h, theta, u) + 0.5 * system.kinetic(pi_b, theta)
        )

    def loss_position(self, nodes):
        return nodes[1]


class ImplicitMidpoint(Integrator):
    r"""Implicit midpoint rule for any (non-separable) energy:

    .. math::
        \Phi_{k+1} = \Phi_k + \delta\, F\big(\tfrac12(\Phi_k + \Phi_{k+1})\big),\qquad
        F(\phi, \pi) = \big(\nabla_\pi H_\varepsilon,\; -\nabla_\phi H_\varepsilon - \gamma\nabla_\pi H\big),

    solved from an explicit-Euler guess with a fixed number of ``iterations`` (so ``jax.grad`` differentiates
    through it) of either the fixed-point map (default; contracts by about :math:`\delta\omega/2` per
    iteration, so 12 iterations reach float64 precision for :math:`\delta\omega \lesssim 0.1`) or Newton's
    method (``solver="newton"``, robust for stiff steps, heavier to compile). Quadrature: :math:`\int H\,dt
    \approx \delta H(\bar\Phi)`, :math:`\int\ell\,dt\approx\delta\,\ell(\bar\phi)` at the midpoint
    :math:`\bar\Phi = \tfrac12(\Phi_k+\Phi_{k+1})`.
    """

    iterations: int = eqx.field(static=True, default=12)
    solver: str = eqx.field(static=True, default="fixed-point")

    def check(self, system: HamiltonianSystem) -> None:
        if self.solver not in ("fixed-point", "newton"):
            raise ValueError(f"ImplicitMidpoint solver must be 'fixed-point' or 'newton', not {self.solver!r}")

    def step(self, system, theta, phi, pi, u, y, eps, gamma, dt):
        n = system.n_dof

        def energy(z):
            return system.hamiltonian(z[:n], z[n:], theta, u) - eps * system.loss(z[:n], y)

        def field(z):
            g = jax.grad(energy)(z)
            if gamma is None:
                return jnp.concatenate([g[n:], -g[:n]])
            g_pi_h = jax.grad(lambda p: system.hamiltonian(z[:n], p, theta, u))(z[n:])
            return jnp.concatenate([g[n:], -g[:n] - gamma * g_pi_h])

        z0 = jnp.concatenate([phi, pi])

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
        return z1[:n], z1[n:], (zm[:n], zm[n:])

    def action(self, system, theta, nodes, u, dt):
        phi_m, pi_m = nodes
        return dt * system.hamiltonian(phi_m, pi_m, theta, u)

    def loss_position(self, nodes):
        return nodes[0]


def default_integrator(system: HamiltonianSystem) -> Integrator:
    """Leapfrog for a separable energy, implicit midpoint otherwise."""
    return Leapfrog() if system.separable else ImplicitMidpoint()
