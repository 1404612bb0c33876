r"""The continuous adjoint state method (paper Eq. 4-5): an independent reference for RHEL.

With the dynamics :math:`\partial_t\Phi = F(\Phi, \theta, t) := J\nabla_\Phi H - \gamma\,(0, \nabla_\pi H)` on
:math:`[0, T]` and :math:`L = \int_0^T \ell(\phi(t), y(t))\,dt`, the adjoint in reversed time :math:`s = T -
t` is

.. math::
    \lambda(0) = 0,\quad \partial_s\lambda = \partial_\Phi F[\Phi(T-s)]^\top\lambda +
    \nabla_\Phi\ell[\Phi(T-s)],\quad
    \frac{dL}{d\Phi(0)} = \lambda(T),\quad \frac{dL}{d\theta} = \int_0^T \partial_\theta
    F[\Phi(T-s)]^\top\lambda\,ds .

Without friction :math:`\partial_\Phi F^\top\lambda = \nabla^2_\Phi H\,J^\top\lambda` and
:math:`\partial_\theta F^\top\lambda = \nabla^2_{\Phi\theta}H\,J^\top\lambda` -- exactly Eq. 4-5. The products
are vector-Jacobian products (no Jacobian is formed).

Scheme (deliberately unrelated to the leapfrog/midpoint RHEL discretization): classical 4th-order Runge-Kutta.
The forward state is integrated to :math:`\Phi(T)` (together with :math:`L`), then the augmented system
:math:`(\Phi, \lambda, G)` is integrated backward in time -- :math:`\Phi` re-integrated backward, nothing
stored. Inputs and targets are continuous-time callables ``u(t)``, ``y(t)`` (evaluated at nodes and
half-steps).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from rhel._custom_types import Params
from rhel.physics.systems import HamiltonianSystem, PhysicsError

__all__ = ["Adjoint", "Interpolated", "adjoint_gradient"]


class Adjoint(eqx.Module):
    """The continuous adjoint state method as a gradient object for :func:`rhel.physics.train.train` (beside
    ``rhel.RHEL()`` and ``rhel.BPTT()``): RK4 with ``refine`` steps per sample step on the piecewise-linear
    interpolation of the sampled inputs and targets. Its loss is the RK4 quadrature of the continuous loss.

    **Arguments:**

    - ``refine``: RK4 steps per time step of the sampled signals.
    """

    refine: int = eqx.field(static=True, default=10)

    def __check_init__(self):
        if isinstance(self.refine, bool) or not isinstance(self.refine, int) or self.refine < 1:
            raise ValueError(f"Adjoint refine must be a positive integer, got {self.refine!r}")


class Interpolated(eqx.Module):
    """A continuous-time signal: piecewise-linear interpolation of samples ``ys`` at times ``ts`` (held constant
    beyond them)."""

    ts: jnp.ndarray
    ys: jnp.ndarray

    def __call__(self, t):
        return jnp.interp(t, self.ts, self.ys)


def _vector_field(system: HamiltonianSystem, theta, z, u, gamma):
    n = system.n_dof
    g = jax.grad(lambda w: system.energy(w[:n], w[n:], theta, u))(z)
    if gamma is None:
        return jnp.concatenate([g[n:], -g[:n]])
    return jnp.concatenate([g[n:], -g[:n] - gamma * g[n:]])


def _rk4(f, z, t, h):
    k1 = f(z, t)
    k2 = f(jax.tree_util.tree_map(lambda a, b: a + 0.5 * h * b, z, k1), t + 0.5 * h)
    k3 = f(jax.tree_util.tree_map(lambda a, b: a + 0.5 * h * b, z, k2), t + 0.5 * h)
    k4 = f(jax.tree_util.tree_map(lambda a, b: a + h * b, z, k3), t + h)
    return jax.tree_util.tree_map(lambda a, b1, b2, b3, b4: a + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4), z, k1, k2, k3, k4)


@eqx.filter_jit
def _adjoint_core(system, drive, target, theta, x0, T, n_steps, gamma, record: bool):
    """RK4 forward to Phi(T) and L, then RK4 backward on (Phi, lambda, G). ``n_steps`` is a traced integer
    (one compilation for every resolution) unless ``record``, which needs a static length."""
    n = system.n_dof
    h = T / n_steps
    z0 = jnp.concatenate([x0[0], x0[1]])

    def fwd(state, t):
        z, _ = state
        return (_vector_field(system, theta, z, drive(t), gamma), system.loss(z[:n], target(t)))

    zT, loss = jax.lax.fori_loop(0, n_steps, lambda k, st: _rk4(fwd, st, k * h, h), (z0, jnp.zeros((), z0.dtype)))

    def bwd(state, s):
        z, lam, _ = state
        t = T - s
        u = drive(t)
        f, vjp = jax.vjp(lambda w, th: _vector_field(system, th, w, u, gamma), z, theta)
        lam_f, g_th = vjp(lam)
        grad_l = jax.grad(lambda q: system.loss(q, target(t)))(z[:n])
        return (-f, lam_f + jnp.concatenate([grad_l, jnp.zeros_like(grad_l)]), g_th)

    acc0 = jax.tree_util.tree_map(jnp.zeros_like, theta)
    init = (zT, jnp.zeros_like(z0), acc0)
    if record:

        def bwd_body(state, k):
            new = _rk4(bwd, state, k * h, h)
            return new, new[2]

        (_, lam, g_theta), running = jax.lax.scan(bwd_body, init, jnp.arange(n_steps))
    else:
        _, lam, g_theta = jax.lax.fori_loop(0, n_steps, lambda k, st: _rk4(bwd, st, k * h, h), init)
        running = None
    return loss, g_theta, (lam[:n], lam[n:]), running


def adjoint_gradient(
    system: HamiltonianSystem,
    theta: Params,
    x0,
    drive,
    target,
    *,
    T: float,
    n_steps: int,
    damping: float = 0.0,
    record: bool = False,
):
    r"""Continuous adjoint (Eq. 4-5) with RK4 and ``n_steps`` steps on ``[0, T]``.

    **Arguments:**

    - ``system``, ``theta``, ``x0``: the system, its parameters and the initial state ``(phi0, pi0)``.
    - ``drive``, ``target``: JAX-traceable callables ``u(t)``, ``y(t)`` (hashable, or :class:`Interpolated`
      samples: the same objects reuse the compilation).
    - ``T``, ``n_steps``: the horizon and the number of RK4 steps.
    - ``damping``: the friction :math:`\gamma`.
    - ``record``: also return the running integral :math:`\int_0^s g_\theta` at echo times
      ``s = h, 2h, ..., T``.

    **Returns:** ``(loss, grad_theta, grad_x0)`` (and ``running`` when ``record``), ``grad_x0 = (dL/dphi0,
    dL/dpi0)``; the loss is :math:`\int\ell\,dt` integrated by RK4 along the forward run.
    """
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(theta))
    x0 = (jnp.asarray(x0[0], dtype), jnp.asarray(x0[1], dtype))
    loss, g_theta, g_x0, running = _adjoint_core(
        system,
        drive,
        target,
        theta,
        x0,
        jnp.asarray(T, dtype),
        int(n_steps) if record else jnp.asarray(n_steps),
        None if float(damping) == 0.0 else jnp.asarray(damping, dtype),
        record,
    )
    if not np.isfinite(float(loss)):
        raise PhysicsError(f"{system.name}: non-finite loss in the adjoint's forward run (unstable step?)")
    if record:
        return loss, g_theta, g_x0, running
    return loss, g_theta, g_x0
