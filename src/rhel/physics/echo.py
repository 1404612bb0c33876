r"""Continuous-time RHEL (paper §3.1, Eq. 6-7) on any :class:`~rhel.physics.systems.HamiltonianSystem`: a thin
adapter over the library's one echo (:func:`rhel.gradients.echo.echo`) and integrators (:mod:`rhel.integrators`).

Conventions. The forward pass runs on :math:`t \in [0, T]` (the paper's :math:`[-T, 0]` shifted) with
:math:`K` steps of :math:`\delta = T/K`; inputs and targets are sampled at the step midpoints :math:`t_{k+1/2}
= (k + \tfrac12)\delta` (arrays of shape ``(K, ...)``, see :func:`midpoint_times`). The loss is

.. math::
    L = \int_0^T \ell(\phi(t), y(t))\,dt \;\approx\; \delta \sum_{k=0}^{K-1} \ell(\phi_{k+1/2}, y_{k+1/2}),

sampled where the integrator says (the leapfrog's half-step position, the midpoint rule's midpoint).

The echo (paper Eq. 6), in echo time :math:`s = T - t`: start from the momentum-flipped final state
:math:`\Phi^e(0) = (\phi(T), -\pi(T))`, replay the inputs reversed, and nudge with :math:`\varepsilon_e`:
:math:`\partial_s\Phi^e = J\nabla H[\Phi^e, \theta, u(T-s)] - \varepsilon_e J\nabla\ell[\Phi^e, y(T-s)]`, i.e.
the flow of :math:`H - \varepsilon_e\ell`: the nudge is the *force* :math:`+\varepsilon_e\nabla_\phi\ell` on the
momenta, applied inside the integrator's step. The gradient read-out (Eq. 7), with the same quadrature as the loss,
for the central estimator:

.. math::
    \frac{dL}{d\theta} \approx -\frac{1}{2\varepsilon}\int_0^T \big(\nabla_\theta H[\Phi^e(s,\varepsilon)]
        - \nabla_\theta H[\Phi^e(s,-\varepsilon)]\big)\,ds,\qquad
    \frac{dL}{d\Phi(0)} \approx \frac{1}{2\varepsilon}\,\Sigma_x\big(\Phi^e(T,\varepsilon) -
    \Phi^e(T,-\varepsilon)\big),

where :math:`\Sigma_x(\phi, \pi) = (\pi, \phi)`: :math:`dL/d\phi_0` is read from the echoes' final *momenta*,
:math:`dL/d\pi_0` from their final *positions*. The estimators are the library's (:data:`rhel.ESTIMATORS`): the
``"one_sided"`` one pairs :math:`+\varepsilon` with the un-nudged echo (which retraces the forward pass, so a device
needs only two passes), bias :math:`O(\varepsilon)`; ``"richardson"`` reaches :math:`O(\varepsilon^4)` with four
nudged echoes. ``epsilon`` is absolute here (the force is :math:`\varepsilon\nabla\ell`; :class:`rhel.RHEL`'s
``relative`` and ``chunk`` are HRU notions and are ignored); ``RHEL(epsilon=None)`` means ``1e-3``.

The echoes run batched (``vmap``) through one ``lax.scan``; the read-out is accumulated in the scan carry, so
no trajectory is stored. With leapfrog and no friction, the :math:`\varepsilon\to0` limit equals the exact
gradient of the discrete loss (what :func:`autodiff_gradient` computes). Even for a linear system the
central estimator keeps an :math:`O(\varepsilon^2)` bias: the nudge :math:`-\varepsilon\ell` of a quadratic
loss changes the echo's stiffness, so the echo is not affine in :math:`\varepsilon` (unlike the discrete
HRUs' linearized nudge, paper Remark 6).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from rhel._custom_types import Params, State
from rhel.energies import check_time_reversal
from rhel.gradients.echo import (
    Estimator,
    Nudge,
    difference_quotient,
    echo,
    get_estimator,
    initial_state_gradient,
    weighted,
)
from rhel.gradients.rhel import RHEL
from rhel.integrators import AbstractIntegrator, default_integrator
from rhel.physics.systems import HamiltonianSystem, PhysicsError

__all__ = [
    "DEFAULT_EPSILON",
    "midpoint_times",
    "sample_signal",
    "EchoNoise",
    "Trajectory",
    "EchoRecord",
    "simulate",
    "forward_loss",
    "autodiff_gradient",
    "rhel_gradient",
    "echo_trajectory",
    "check_energy_drift",
]

#: The nudging strength of continuous-time RHEL when ``RHEL(epsilon=None)`` (absolute: the force is ``eps grad l``).
DEFAULT_EPSILON = 1e-3


def midpoint_times(T: float, n_steps: int) -> np.ndarray:
    r"""The sample times :math:`t_{k+1/2} = (k+\tfrac12)\,T/K`, ``k = 0..K-1``."""
    return (np.arange(n_steps) + 0.5) * (T / n_steps)


def sample_signal(fn, times) -> Array:
    """``fn(t)`` evaluated at each time (``fn`` must be JAX-traceable); shape ``(len(times), ...)``."""
    return jax.vmap(fn)(jnp.asarray(times))


class EchoNoise(eqx.Module):
    r"""What a physical device adds to the echo passes.

    **Arguments:**

    - ``readout``: relative precision of the :math:`\nabla_\theta H` read-out: each per-step sample is multiplied
      by :math:`1 + \sigma\xi`, :math:`\xi \sim \mathcal N(0, 1)` independent per echo, step and parameter.
    - ``drift``: relative parameter drift between passes: each echo runs (and reads out) with
      :math:`\theta\,(1 + \delta\xi)` elementwise, independently per echo (the forward pass uses :math:`\theta`).
    """

    readout: float = 0.0
    drift: float = 0.0


class Trajectory(NamedTuple):
    """A recorded forward run: node states ``phi, pi`` ``(K+1, n)`` at ``t`` ``(K+1,)``, and the loss
    positions ``phi_mid`` ``(K, n)`` at ``t_mid`` (where inputs/targets are sampled)."""

    t: np.ndarray
    phi: Array
    pi: Array
    t_mid: np.ndarray
    phi_mid: Array
    loss: Array


class EchoRecord(NamedTuple):
    """Recorded echoes, for figures: ``s`` ``(K+1,)`` echo time; ``phi, pi`` ``(E, K+1, n)`` for the echoes
    nudged by ``epsilon`` ``(E,)``; ``running`` the running gradient estimate (theta pytree, leading axis
    ``K+1``)."""

    s: np.ndarray
    epsilon: Array
    phi: Array
    pi: Array
    running: Params


def rhel_settings(gradient: RHEL | None) -> tuple[float | Array, Estimator]:
    """``(epsilon, estimator)`` of continuous-time RHEL from a :class:`rhel.RHEL` object (``None``: ``RHEL()``)."""
    gradient = RHEL() if gradient is None else gradient
    if not isinstance(gradient, RHEL):
        raise TypeError(
            f"gradient must be a rhel.RHEL(epsilon=..., estimator=...) object here, got {gradient!r}; "
            "for the references use autodiff_gradient (BPTT) or adjoint_gradient"
        )
    eps = DEFAULT_EPSILON if gradient.epsilon is None else gradient.epsilon
    return eps, get_estimator(gradient.estimator)


# ------------------------------------------------------------------------------------------------------------
# Cores (jitted; system and integrator are static)
# ------------------------------------------------------------------------------------------------------------


def _finite(*xs):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in xs]))


@eqx.filter_jit
def _forward_core(system, integrator, theta, x0, inputs, targets, dt, gamma, record: bool):
    """Scan the forward pass; returns ``(phi_T, pi_T, loss, first_nonfinite_step (or -1), recorded)``."""

    def body(carry, inp):
        phi, pi, loss, bad, k = carry
        u, y = inp
        phi1, pi1, q = integrator.step(system.energy, phi, pi, theta, u, dt=dt, friction=gamma)
        loss = loss + dt * system.loss(q, y)
        bad = jnp.where((bad < 0) & ~_finite(phi1, pi1), k, bad)
        out = (phi1, pi1, q) if record else None
        return (phi1, pi1, loss, bad, k + 1), out

    phi0, pi0 = x0
    init = (phi0, pi0, jnp.zeros((), phi0.dtype), jnp.array(-1), jnp.array(0))
    (phi, pi, loss, bad, _), rec = jax.lax.scan(body, init, (inputs, targets))
    return phi, pi, loss, bad, rec


def _perturb(theta, key, level):
    leaves, tree = jax.tree_util.tree_flatten(theta)
    keys = jax.random.split(key, len(leaves))
    noisy = [
        x * (1.0 + level * jax.random.normal(k, jnp.shape(x), jnp.result_type(x)))
        for x, k in zip(leaves, keys, strict=True)
    ]
    return jax.tree_util.tree_unflatten(tree, noisy)


@eqx.filter_jit
def _echo_core(system, integrator, theta, xT, inputs, targets, dt, eps_e, gamma, noise, key, noisy: bool, record):
    """Run the nudged echoes (batched) from the flipped final state through the shared echo routine; returns
    the accumulated rules, where the echoes end, the first non-finite echo step (or -1) and the record."""
    n_steps, n_echo = inputs.shape[0], eps_e.shape[0]
    grad_loss = jax.grad(system.loss)

    def step(q, p, th, x, force):
        q1, p1, _, g_theta, _ = integrator.step_with_rule(system.energy, q, p, th, x[0], dt=dt, force=force,
                                                          friction=gamma)  # fmt: skip
        return q1, p1, g_theta, None

    def emit(q_start, q1, p1, g_x, acc):
        finite = _finite(q1, p1)
        return (q1, p1, acc, finite) if record else finite

    if noisy:
        keys = jax.vmap(jax.random.split)(jax.random.split(key, n_echo))  # (E, 2): drift and read-out keys
        theta_e = jax.vmap(lambda k: _perturb(theta, k, noise[1]))(keys[:, 0])
        step_keys = jax.vmap(lambda k: jax.random.split(k, n_steps))(keys[:, 1])  # (E, K), in echo order

        def readout(g, keys_e, x):
            return _perturb(g, keys_e[n_steps - 1 - x[2]], noise[0])
    else:
        theta_e, step_keys, readout = theta, None, None

    nudge = Nudge(force=lambda e, x: lambda q: e * grad_loss(q, x[1]), readout=readout)
    xs = (inputs, targets, jnp.arange(n_steps))
    q_e, p_e, acc_e, _, outs = echo(
        step, theta_e, xT, eps_e, length=n_steps, read=lambda carry, start, size: xs, nudge=nudge, emit=emit,
        extra=step_keys, theta_per_echo=noisy,
    )  # fmt: skip
    outs = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a[::-1], 0, 1), outs)  # (E, K, ...) in echo order
    finite = outs[3] if record else outs
    bad = jnp.where(jnp.all(finite, axis=1), -1, jnp.argmin(finite, axis=1))
    return acc_e, q_e, p_e, bad, (outs[:3] if record else None)


# ------------------------------------------------------------------------------------------------------------
# Checks
# ------------------------------------------------------------------------------------------------------------


def _raise_nonfinite(system, where: str, bad, n_steps: int, dt: float):
    bad = np.atleast_1d(np.asarray(bad))
    if np.any(bad >= 0):
        k = int(bad[bad >= 0].min())
        raise PhysicsError(
            f"{system.name}: non-finite state (NaN/Inf) in the {where} at step {k} of {n_steps} "
            f"(dt = {dt:g}): the time step is probably unstable, or the parameters/inputs are invalid"
        )


def _gamma(damping: float, dtype):
    """``None`` (friction not traced at all) for zero damping, else the friction coefficient as an array."""
    return None if float(damping) == 0.0 else jnp.asarray(damping, dtype)


@eqx.filter_jit
def _energy(system, theta, phi, pi, u):
    return system.energy(phi, pi, theta, u)


def _energy_drift(system, integrator, theta, inputs_like, targets_like, dt_a, seed):
    """Relative energy error after a free run (zero input, no nudge, no friction) from a random state; it
    reuses the compiled forward pass (same shapes as the real run)."""
    rng = np.random.default_rng(seed)
    dtype = inputs_like.dtype
    x0 = tuple(jnp.asarray(rng.standard_normal(system.n_dof), dtype) for _ in range(2))
    u0 = jnp.zeros_like(inputs_like)
    phi, pi, _, _, _ = _forward_core(system, integrator, theta, x0, u0, jnp.zeros_like(targets_like), dt_a, None, False)
    h0 = float(_energy(system, theta, x0[0], x0[1], u0[0]))
    h1 = float(_energy(system, theta, phi, pi, u0[0]))
    return h0, h1


def check_energy_drift(
    system: HamiltonianSystem,
    theta: Params,
    dt: float,
    n_steps: int,
    *,
    integrator: AbstractIntegrator | None = None,
    tol: float = 0.1,
    atol: float = 1e-9,
    seed: int = 0,
    _shapes=None,
) -> float:
    r"""Run the *free* system (zero input, no nudge, no friction) for ``n_steps`` steps of ``dt`` from a
    random standard-normal state (seeded) and return the relative energy error :math:`|H_K - H_0| /
    \max(|H_0|, \text{atol})`. Raise :class:`PhysicsError` ("unstable time step") when it exceeds ``tol`` or
    is not finite. A stable symplectic step keeps the error bounded at :math:`O((\omega\delta)^2)`; an
    unstable one grows it exponentially."""
    integrator = default_integrator(system.energy) if integrator is None else integrator
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(theta))
    if _shapes is None:
        inputs_like, targets_like = jnp.zeros((n_steps,), dtype), jnp.zeros((n_steps,), dtype)
    else:
        inputs_like, targets_like = _shapes
    h0, h1 = _energy_drift(system, integrator, theta, inputs_like, targets_like, jnp.asarray(dt, dtype), seed)
    drift = abs(h1 - h0) / max(abs(h0), atol)
    if not np.isfinite(drift) or drift > tol:
        raise PhysicsError(
            f"{system.name}: unstable time step: relative energy drift {drift:.3g} of the free run "
            f"over {n_steps} steps exceeds the tolerance {tol:g} (dt = {dt:g}); reduce dt"
        )
    return drift


def validate(system, integrator, theta, inputs, targets, dt, *, energy_tol=0.1, seed=0) -> None:
    """RHEL's preconditions: the energy is finite and even in the momenta at random states
    (:func:`rhel.check_time_reversal` without its round trip, which an unstable step would fail first; raises
    :class:`rhel.ContractError`), and the time step is stable (:func:`check_energy_drift`, :class:`PhysicsError`)."""
    check_time_reversal(
        system.energy, theta, inputs[0], key=jax.random.key(seed), steps=0, state_size=system.n_dof, name=system.name
    )
    check_energy_drift(system, theta, dt, inputs.shape[0], integrator=integrator, tol=energy_tol,
                       _shapes=(inputs, targets))  # fmt: skip


def prepare(system, integrator, theta, x0, inputs, targets, dt):
    """Cast the run's arrays to the parameters' dtype, pick and check the integrator."""
    integrator = default_integrator(system.energy) if integrator is None else integrator
    integrator.check(system.energy)
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(theta))
    x0 = (jnp.asarray(x0[0], dtype), jnp.asarray(x0[1], dtype))
    inputs = jnp.asarray(inputs, dtype)
    targets = jnp.asarray(targets, dtype)
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"inputs ({inputs.shape[0]} steps) and targets ({targets.shape[0]} steps) differ in length")
    return integrator, x0, inputs, targets, jnp.asarray(dt, dtype), dtype


def echo_nudges(eps, estimator: Estimator, dtype) -> tuple[Array, Array]:
    """The echoes' nudges ``eps_e`` and weights; the un-nudged term runs as an echo of its own (as on a device)."""
    multipliers, weights = estimator.echoes(with_forward=True)
    return jnp.asarray(multipliers, dtype) * jnp.asarray(eps, dtype), jnp.asarray(weights, dtype)


def estimate(eps, weights, acc_e, q_e, p_e):
    """``(dL/dtheta, (dL/dphi0, dL/dpi0))`` from the echoes' rules and where they end."""
    return difference_quotient(eps, weighted(weights, acc_e)), initial_state_gradient(weights, eps, q_e, p_e)


# ------------------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------------------


def simulate(system, theta, x0, inputs, targets=None, *, dt: float, integrator=None, damping: float = 0.0):
    """Record a forward run (for figures and teacher targets). ``targets`` default to zeros."""
    if targets is None:
        targets = jnp.zeros((jnp.shape(inputs)[0],))
    integrator, x0, inputs, targets, dt_a, dtype = prepare(system, integrator, theta, x0, inputs, targets, dt)
    _, _, loss, bad, rec = _forward_core(
        system, integrator, theta, x0, inputs, targets, dt_a, _gamma(damping, dtype), True
    )
    _raise_nonfinite(system, "forward pass", bad, inputs.shape[0], dt)
    n = inputs.shape[0]
    return Trajectory(
        t=np.arange(n + 1) * dt,
        phi=jnp.concatenate([x0[0][None], rec[0]]),
        pi=jnp.concatenate([x0[1][None], rec[1]]),
        t_mid=midpoint_times(n * dt, n),
        phi_mid=rec[2],
        loss=loss,
    )


def forward_loss(system, theta, x0, inputs, targets, *, dt, integrator=None, damping=0.0) -> Array:
    r"""The discrete loss :math:`\delta\sum_k \ell(\phi_{k+1/2}, y_{k+1/2})`; differentiable by ``jax.grad``
    (BPTT)."""
    integrator = default_integrator(system.energy) if integrator is None else integrator
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(theta))
    _, _, loss, _, _ = _forward_core(
        system, integrator, theta, x0, inputs, targets, jnp.asarray(dt, dtype), _gamma(damping, dtype), False
    )
    return loss


@eqx.filter_jit
def _autodiff(system, integrator, theta, x0, inputs, targets, dt, gamma):
    def f(th, x):
        return _forward_core(system, integrator, th, x, inputs, targets, dt, gamma, False)[2]

    loss, (g_theta, g_x0) = jax.value_and_grad(f, argnums=(0, 1))(theta, x0)
    return loss, g_theta, g_x0


def autodiff_gradient(system, theta, x0, inputs, targets, *, dt, integrator=None, damping=0.0):
    """Reference: ``jax.grad`` through the discretized simulation (BPTT). Returns ``(loss, grad_theta,
    grad_x0)`` with ``grad_x0 = (dL/dphi0, dL/dpi0)``."""
    integrator, x0, inputs, targets, dt_a, dtype = prepare(system, integrator, theta, x0, inputs, targets, dt)
    return _autodiff(system, integrator, theta, x0, inputs, targets, dt_a, _gamma(damping, dtype))


def rhel_gradient(
    system: HamiltonianSystem,
    theta: Params,
    x0: State,
    inputs: Array,
    targets: Array,
    *,
    dt: float,
    gradient: RHEL | None = None,
    integrator: AbstractIntegrator | None = None,
    damping: float = 0.0,
    echo_damping: Literal["reversed", "physical"] = "reversed",
    noise: EchoNoise | None = None,
    key: Array | None = None,
    check: bool = True,
    energy_tol: float = 0.1,
):
    r"""Continuous RHEL: forward pass, momentum flip, nudged echoes with the inputs replayed in reverse, and the
    read-out of Eq. 7 (see the module docstring for the math and sign conventions).

    **Arguments:**

    - ``system``, ``theta``: the energy and its parameters (any pytree of float arrays).
    - ``x0``: initial state ``(phi0, pi0)``.
    - ``inputs``, ``targets``: ``u`` and ``y`` sampled at the step midpoints (:func:`midpoint_times`), shape
      ``(K, ...)``.
    - ``dt``: time step :math:`\delta` (:math:`T = K\delta`).
    - ``gradient``: a :class:`rhel.RHEL` object: its ``epsilon`` (absolute; ``None`` means 1e-3) and
      ``estimator`` (``"central"``, ``"one_sided"`` or ``"richardson"``). Default ``RHEL()``.
    - ``integrator``: defaults to leapfrog (separable) / implicit midpoint (non-separable).
    - ``damping``: friction :math:`\gamma` of the forward pass (RHEL is only exact at :math:`\gamma = 0`).
    - ``echo_damping``: ``"reversed"`` -- the echoes are anti-damped (:math:`-\gamma`, energy pumped back so that
      the un-nudged echo retraces the forward run; the paper's App. A.3.1 setting) -- or ``"physical"`` (the
      echoes dissipate like the forward pass).
    - ``noise``, ``key``: device imperfections (:class:`EchoNoise`) and their PRNG key.
    - ``check``: validate first (:func:`validate`: time-reversal invariance, energy drift of the free run).
      Non-finite states are always checked (:class:`PhysicsError`).
    - ``energy_tol``: tolerance of the relative energy drift check.

    **Returns:** ``(loss, grad_theta, grad_x0)`` with ``grad_x0 = (dL/dphi0, dL/dpi0)``.
    """
    loss, g_theta, g_x0, _, _, _ = _forward_and_echo(
        system, integrator, theta, x0, inputs, targets, dt, gradient=gradient, damping=damping,
        echo_damping=echo_damping, noise=noise, key=key, record=False, check=check, energy_tol=energy_tol,
    )  # fmt: skip
    return loss, g_theta, g_x0


def _forward_and_echo(
    system, integrator, theta, x0, inputs, targets, dt, *, gradient, damping, echo_damping, noise, key, record,
    check, energy_tol=0.1,
):  # fmt: skip
    """Validate, run the forward pass and the echoes, raising on non-finite states; the one path behind
    :func:`rhel_gradient` and :func:`echo_trajectory`. Returns ``(loss, grad_theta, grad_x0, record, final state,
    (eps, eps_e, weights))``."""
    eps, estimator = rhel_settings(gradient)
    if echo_damping not in ("reversed", "physical"):
        raise ValueError(f"echo_damping must be 'reversed' or 'physical', not {echo_damping!r}")
    if noise is not None and key is None:
        raise ValueError("noise needs a PRNG key: pass key=jax.random.key(seed)")
    integrator, x0, inputs, targets, dt_a, dtype = prepare(system, integrator, theta, x0, inputs, targets, dt)
    n_steps = inputs.shape[0]
    if check:
        validate(system, integrator, theta, inputs, targets, dt, energy_tol=energy_tol)
    phiT, piT, loss, bad, _ = _forward_core(
        system, integrator, theta, x0, inputs, targets, dt_a, _gamma(damping, dtype), False
    )
    _raise_nonfinite(system, "forward pass", bad, n_steps, dt)
    eps_e, weights = echo_nudges(eps, estimator, dtype)
    levels = jnp.asarray([noise.readout, noise.drift] if noise is not None else [0.0, 0.0], dtype)
    gamma_e = _gamma(-damping if echo_damping == "reversed" else damping, dtype)
    key = jax.random.PRNGKey(0) if key is None else key
    acc_e, q_e, p_e, bad_e, rec = _echo_core(
        system, integrator, theta, (phiT, piT), inputs, targets, dt_a, eps_e, gamma_e, levels, key,
        noise is not None, record,
    )  # fmt: skip
    _raise_nonfinite(system, "echo", bad_e, n_steps, dt)
    g_theta, g_x0 = estimate(jnp.asarray(eps, dtype), weights, acc_e, q_e, p_e)
    return loss, g_theta, g_x0, rec, (phiT, piT), (eps, eps_e, weights)


def echo_trajectory(
    system,
    theta,
    x0,
    inputs,
    targets,
    *,
    dt,
    gradient: RHEL | None = None,
    integrator=None,
    damping=0.0,
    echo_damping="reversed",
) -> EchoRecord:
    """The same echo routine as :func:`rhel_gradient`, recording the echoes and the running gradient estimate
    :math:`-\\frac{1}{\\varepsilon}\\int_0^s \\sum_e w_e \\nabla_\\theta H^{(e)}` over echo time :math:`s` (for
    figures)."""
    _, _, _, rec, (phiT, piT), (eps, eps_e, weights) = _forward_and_echo(
        system, integrator, theta, x0, inputs, targets, dt, gradient=gradient, damping=damping,
        echo_damping=echo_damping, noise=None, key=None, record=True, check=False,
    )  # fmt: skip
    n_echo = eps_e.shape[0]
    phi = jnp.concatenate([jnp.broadcast_to(phiT, (n_echo, 1) + phiT.shape), rec[0]], axis=1)
    pi = jnp.concatenate([jnp.broadcast_to(-piT, (n_echo, 1) + piT.shape), rec[1]], axis=1)
    running = difference_quotient(jnp.asarray(eps, eps_e.dtype), weighted(weights, rec[2]))
    running = jax.tree_util.tree_map(lambda a: jnp.concatenate([jnp.zeros((1,) + a.shape[1:], a.dtype), a]), running)
    n = inputs.shape[0]
    return EchoRecord(s=np.arange(n + 1) * dt, epsilon=eps_e, phi=phi, pi=pi, running=running)
