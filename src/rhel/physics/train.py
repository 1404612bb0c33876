r"""Training physical parameters with RHEL or BPTT (optax Adam), and the teacher-student tasks of the demos.

The gradient method is an object, as everywhere in the library: ``rhel.RHEL(epsilon=..., estimator=...)`` runs
:func:`~rhel.physics.echo.rhel_gradient`'s forward pass and echoes (the same jitted cores), ``rhel.BPTT()``
differentiates the forward simulation with ``jax.grad``; both minimize the same discrete loss :math:`L(\theta) =
\delta\sum_k \ell(\phi_{k+1/2}, y_{k+1/2})`. :class:`~rhel.physics.adjoint.Adjoint` follows the continuous
adjoint state method on the interpolated signals (and reports its RK4 loss).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rhel._custom_types import Params
from rhel.gradients.bptt import BPTT
from rhel.gradients.rhel import RHEL
from rhel.physics.adjoint import Adjoint, Interpolated, _adjoint_core
from rhel.physics.echo import (
    _echo_core,
    _forward_core,
    _raise_nonfinite,
    echo_nudges,
    estimate,
    midpoint_times,
    prepare,
    rhel_settings,
    simulate,
    validate,
)
from rhel.physics.systems import (
    HamiltonianSystem,
    fput_chain,
    random_fput_params,
    random_oscillator_params,
    six_oscillators,
)

__all__ = ["TrainResult", "Task", "train", "oscillator_task", "fput_task", "multisine"]


class TrainResult(NamedTuple):
    """``losses[i]``: the loss at the parameters *before* update ``i``; ``losses[-1]``: after the last
    update."""

    theta: Params
    losses: np.ndarray


class Task(NamedTuple):
    """A teacher-student problem: the student ``system`` starts at ``theta0`` and must reproduce, on the
    output, the response of the same system with ``theta_teacher`` to the same drive. ``inputs``/``targets``
    are sampled at the step midpoints; ``drive``/``target`` are continuous-time callables (for the adjoint
    reference)."""

    system: HamiltonianSystem
    theta_teacher: Params
    theta0: Params
    x0: tuple
    inputs: jnp.ndarray
    targets: jnp.ndarray
    drive: object
    target: object
    dt: float
    T: float


@eqx.filter_jit
def _train_step(system, integrator, opt, gradient, theta, opt_state, x0, inputs, targets, dt, echoes, signals):
    if isinstance(gradient, RHEL):
        eps, eps_e, weights = echoes
        phiT, piT, loss, bad, _ = _forward_core(system, integrator, theta, x0, inputs, targets, dt, None, False)
        levels = jnp.zeros((2,), dt.dtype)
        acc_e, q_e, p_e, bad_e, _ = _echo_core(
            system, integrator, theta, (phiT, piT), inputs, targets, dt, eps_e, None, levels,
            jax.random.PRNGKey(0), False, False,
        )  # fmt: skip
        grads = estimate(eps, weights, acc_e, q_e, p_e)[0]
        bad = jnp.maximum(bad, jnp.max(bad_e))
    elif isinstance(gradient, Adjoint):
        drive, target, n_steps = signals
        T = dt * inputs.shape[0]
        loss, grads, _, _ = _adjoint_core(system, drive, target, theta, x0, T, n_steps, None, False)
        bad = jnp.where(jnp.isfinite(loss), -1, 0)
    else:

        def f(th):
            out = _forward_core(system, integrator, th, x0, inputs, targets, dt, None, False)
            return out[2], out[3]

        (loss, bad), grads = jax.value_and_grad(f, has_aux=True)(theta)
    updates, opt_state = opt.update(grads, opt_state, theta)
    return optax.apply_updates(theta, updates), opt_state, loss, bad


def train(
    system: HamiltonianSystem,
    theta0: Params,
    x0,
    inputs,
    targets,
    *,
    dt: float,
    gradient: RHEL | BPTT | Adjoint | None = None,
    steps: int = 100,
    lr: float = 0.05,
    integrator=None,
) -> TrainResult:
    """Adam on the physical parameters (``x0`` fixed).

    **Arguments:**

    - ``system``, ``theta0``, ``x0``: the system, its initial parameters and the (fixed) initial state.
    - ``inputs``, ``targets``: sampled at the step midpoints, shape ``(K, ...)``.
    - ``dt``: the time step.
    - ``gradient``: ``rhel.RHEL(epsilon=..., estimator=...)`` (default ``RHEL()``, epsilon 1e-3), ``rhel.BPTT()``
      or ``rhel.physics.Adjoint()``.
    - ``steps``, ``lr``: Adam steps and learning rate.
    - ``integrator``: defaults to leapfrog (separable) / implicit midpoint (non-separable).

    Validates once (time-reversal invariance, energy drift), and raises
    :class:`~rhel.physics.systems.PhysicsError` if a state turns non-finite during training.
    """
    gradient = RHEL() if gradient is None else gradient
    if not isinstance(gradient, (RHEL, BPTT, Adjoint)):
        raise TypeError(
            f"gradient must be a gradient object, rhel.RHEL(epsilon=...), rhel.BPTT() or rhel.physics.Adjoint(), "
            f"got {gradient!r}"
        )
    integrator, x0, inputs, targets, dt_a, dtype = prepare(system, integrator, theta0, x0, inputs, targets, dt)
    validate(system, integrator, theta0, inputs, targets, dt)
    echoes = signals = None
    if isinstance(gradient, RHEL):
        eps, estimator = rhel_settings(gradient)
        echoes = (jnp.asarray(eps, dtype), *echo_nudges(eps, estimator, dtype))
    if isinstance(gradient, Adjoint):
        times = jnp.asarray(midpoint_times(inputs.shape[0] * dt, inputs.shape[0]), dtype)
        signals = (Interpolated(times, inputs), Interpolated(times, targets), jnp.asarray(gradient.refine * len(times)))
    opt = optax.adam(lr)
    theta, opt_state = theta0, opt.init(theta0)
    losses = []
    for _ in range(steps):
        theta, opt_state, loss, bad = _train_step(
            system, integrator, opt, gradient, theta, opt_state, x0, inputs, targets, dt_a, echoes, signals
        )
        losses.append(loss)
        _raise_nonfinite(system, f"{type(gradient).__name__} training", bad, inputs.shape[0], dt)
    final = _forward_core(system, integrator, theta, x0, inputs, targets, dt_a, None, False)[2]
    losses.append(final)
    return TrainResult(theta=theta, losses=np.asarray(jnp.stack(losses)))


# ------------------------------------------------------------------------------------------------------------
# Teacher-student tasks
# ------------------------------------------------------------------------------------------------------------


class multisine(eqx.Module):
    r"""A drive :math:`u(t) = \sum_j a_j \sin(\omega_j t + \varphi_j)` (hashable, JAX-traceable)."""

    amps: tuple = eqx.field(static=True)
    freqs: tuple = eqx.field(static=True)
    phases: tuple = eqx.field(static=True)

    @classmethod
    def random(cls, seed: int, n: int = 3, amp: float = 1.0, fmin: float = 0.3, fmax: float = 1.5):
        rng = np.random.default_rng(seed)
        return cls(
            tuple(float(a) for a in amp * rng.uniform(0.5, 1.0, n) / np.sqrt(n)),
            tuple(float(f) for f in rng.uniform(fmin, fmax, n)),
            tuple(float(p) for p in rng.uniform(0, 2 * np.pi, n)),
        )

    def __call__(self, t):
        a, w, p = (jnp.asarray(v) for v in (self.amps, self.freqs, self.phases))
        return jnp.sum(a * jnp.sin(w * t + p))


def _teacher_task(system, theta_teacher, theta0, output, drive, *, T, n_steps, refine=8) -> Task:
    """The teacher runs ``refine`` times finer than the student (even ``refine``: the student's midpoints are
    fine nodes), so that the continuous-time target (linear interpolation of the fine run, for the adjoint)
    and the sampled targets agree to O((dt/refine)^2) and the student's own time-discretization error stays
    visible."""
    dt = T / n_steps
    inputs = jax.vmap(drive)(jnp.asarray(midpoint_times(T, n_steps)))
    x0 = (jnp.zeros(system.n_dof), jnp.zeros(system.n_dof))
    fine_inputs = jax.vmap(drive)(jnp.asarray(midpoint_times(T, refine * n_steps)))
    fine = simulate(system, theta_teacher, x0, fine_inputs, dt=dt / refine)
    targets = fine.phi[refine // 2 :: refine, output][:n_steps]
    ts = np.concatenate([fine.t, fine.t_mid])
    ys = np.concatenate([np.asarray(fine.phi[:, output]), np.asarray(fine.phi_mid[:, output])])
    order = np.argsort(ts)
    target = Interpolated(jnp.asarray(ts[order]), jnp.asarray(ys[order]))
    return Task(system, theta_teacher, theta0, x0, inputs, targets, drive, target, dt, T)


def oscillator_task(*, T: float = 20.0, n_steps: int = 400, seed: int = 0) -> Task:
    """The paper's toy as a teacher-student problem: six oscillators, teacher parameters from ``seed + 1``,
    student from ``seed + 2``, multisine drive on oscillator 1 (seeded), target: the teacher's oscillator
    4."""
    theta_teacher, theta0 = random_oscillator_params(seed + 1), random_oscillator_params(seed + 2)
    drive = multisine.random(seed)
    return _teacher_task(six_oscillators(), theta_teacher, theta0, 3, drive, T=T, n_steps=n_steps)


def fput_task(*, n: int = 4, T: float = 20.0, n_steps: int = 400, seed: int = 0, amp: float = 2.0) -> Task:
    """FPUT-beta chain teacher-student problem (target: the teacher's last mass); the drive amplitude ``amp``
    makes the quartic springs matter."""
    theta_teacher, theta0 = random_fput_params(seed + 1, n), random_fput_params(seed + 2, n)
    drive = multisine.random(seed, amp=amp)
    return _teacher_task(fput_chain(n), theta_teacher, theta0, n - 1, drive, T=T, n_steps=n_steps)
