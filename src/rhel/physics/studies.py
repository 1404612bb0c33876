r"""What breaks RHEL, and what a device must deliver: damping and read-out noise / parameter drift.

* :func:`damping_study` -- add friction :math:`\gamma`
  (:math:`\partial_t\pi \mathrel{+}= -\gamma\nabla_\pi T`) and compare the RHEL estimate with the true
  gradient of the damped system (``jax.grad`` through the damped simulation). At :math:`\gamma = 0` they agree
  to the :math:`O(\varepsilon^2)` bias; the error grows with :math:`\gamma` -- the paper's App. A.3.1
  negative result: even with an anti-damped echo that retraces the forward run (``echo_damping="reversed"``),
  the nudged echo's linearization has the wrong sign of the dissipative term, so it no longer carries the
  adjoint. A physical echo that keeps dissipating
  (``"physical"``) does not even retrace.
* :func:`noise_study` -- cosine similarity of the RHEL gradient with the exact one when the read-out of
  :math:`\nabla_\theta H` has relative Gaussian noise :math:`\sigma`, or the parameters drift by a relative
  :math:`\delta` between passes, for several nudging strengths :math:`\varepsilon` (the signal is the
  *difference* of two echoes, :math:`O(\varepsilon)`, so the tolerable noise scales with :math:`\varepsilon`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rhel.gradients.echo import ESTIMATORS
from rhel.gradients.rhel import RHEL
from rhel.integrators import default_integrator
from rhel.physics.echo import (
    _echo_core,
    _forward_core,
    autodiff_gradient,
    echo_nudges,
    estimate,
    rhel_gradient,
)
from rhel.physics.train import Task, oscillator_task

__all__ = ["flat", "cosine", "relative_error", "damping_study", "noise_study"]


def flat(tree) -> np.ndarray:
    """All leaves of a pytree, raveled and concatenated (float64 numpy)."""
    return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree_util.tree_leaves(tree)])


def cosine(a, b) -> float:
    fa, fb = flat(a), flat(b)
    return float(fa @ fb / (np.linalg.norm(fa) * np.linalg.norm(fb)))


def relative_error(a, b) -> float:
    """:math:`\\|a - b\\| / \\|b\\|` over all parameters."""
    fa, fb = flat(a), flat(b)
    return float(np.linalg.norm(fa - fb) / np.linalg.norm(fb))


def damping_study(
    gammas=(0.0, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3),
    *,
    task: Task | None = None,
    gradient: RHEL | None = None,
    echo_modes=("reversed", "physical"),
) -> dict:
    """RHEL (``gradient``, default ``rhel.RHEL()``: central, epsilon 1e-3) vs the true gradient of the damped
    system, for each friction ``gamma`` and echo mode.

    Returns ``{"gamma": array, mode: {"rel_error": array, "cosine": array}, ...}`` (student parameters of
    ``task``, default :func:`~rhel.physics.train.oscillator_task` with ``T = 20``, ``K = 400``).
    """
    task = oscillator_task() if task is None else task
    out: dict = {"gamma": np.asarray(gammas, float)}
    refs = [
        autodiff_gradient(task.system, task.theta0, task.x0, task.inputs, task.targets, dt=task.dt, damping=g)[1]
        for g in gammas
    ]
    for mode in echo_modes:
        errs, coss = [], []
        for g, ref in zip(gammas, refs, strict=True):
            _, est, _ = rhel_gradient(
                task.system, task.theta0, task.x0, task.inputs, task.targets, dt=task.dt, gradient=gradient,
                damping=g, echo_damping=mode, check=False,
            )  # fmt: skip
            errs.append(relative_error(est, ref))
            coss.append(cosine(est, ref))
        out[mode] = {"rel_error": np.asarray(errs), "cosine": np.asarray(coss)}
    return out


def noise_study(
    levels=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
    *,
    task: Task | None = None,
    epsilon_values=(1e-3, 1e-2, 1e-1),
    kinds=("readout", "drift"),
    repeats: int = 5,
    seed: int = 0,
) -> dict:
    """Mean and std (over ``repeats`` seeds) of the cosine similarity between the noisy RHEL gradient (central
    estimator) and the exact (autodiff) one, per noise kind, nudging strength and noise level.

    Returns ``{"levels": array, "epsilon": array, kind: {"mean": (n_eps, n_levels), "std": (n_eps, n_levels)}}``.
    """
    task = oscillator_task() if task is None else task
    system, theta, integ = task.system, task.theta0, default_integrator(task.system.energy)
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(theta))
    dt = jnp.asarray(task.dt, dtype)
    x0 = (jnp.asarray(task.x0[0], dtype), jnp.asarray(task.x0[1], dtype))
    _, ref, _ = autodiff_gradient(system, theta, x0, task.inputs, task.targets, dt=task.dt)
    phiT, piT, _, _, _ = _forward_core(system, integ, theta, x0, task.inputs, task.targets, dt, None, False)
    key = jax.random.PRNGKey(seed)
    out: dict = {"levels": np.asarray(levels, float), "epsilon": np.asarray(epsilon_values, float)}
    for kind in kinds:
        mean = np.zeros((len(epsilon_values), len(levels)))
        std = np.zeros_like(mean)
        for i, eps in enumerate(epsilon_values):
            eps_e, weights = echo_nudges(eps, ESTIMATORS["central"], dtype)
            for j, level in enumerate(levels):
                noise = jnp.asarray([level, 0.0] if kind == "readout" else [0.0, level], dtype)
                cs = []
                for _ in range(repeats):
                    key, sub = jax.random.split(key)
                    acc_e, q_e, p_e, _, _ = _echo_core(
                        system, integ, theta, (phiT, piT), task.inputs, task.targets, dt, eps_e, None, noise, sub,
                        True, False,
                    )  # fmt: skip
                    cs.append(cosine(estimate(jnp.asarray(eps, dtype), weights, acc_e, q_e, p_e)[0], ref))
                mean[i, j], std[i, j] = np.mean(cs), np.std(cs)
        out[kind] = {"mean": mean, "std": std}
    return out
