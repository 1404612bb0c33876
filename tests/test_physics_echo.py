"""Continuous RHEL against its two independent references, with measured convergence orders.

References: the continuous adjoint state method (Eq. 4-5, RK4, its own scheme) and ``jax.grad`` through the
discrete simulation. Measured on this machine (float64): RHEL vs autodiff ~1e-7 relative at eps=1e-3 (the eps
-> 0 limit *is* the discrete gradient for leapfrog); RHEL vs adjoint ~1e-3 at dt=0.05 (the leapfrog O(dt^2)
error); eps slopes 1.98 (central) and 1.05 (one-sided); dt slope 2.00; adjoint (RK4) slope 4.0.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhel import RHEL
from rhel.physics import (
    ImplicitMidpoint,
    adjoint_gradient,
    autodiff_gradient,
    echo_trajectory,
    fput_chain,
    midpoint_times,
    random_fput_params,
    random_oscillator_params,
    rhel_gradient,
    sample_signal,
    six_oscillators,
    soft_oscillators,
)
from rhel.physics.train import multisine

T = 5.0
DRIVE = multisine.random(0)
TARGET = multisine.random(5, amp=0.5)


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(v)) for v in jax.tree_util.tree_leaves(tree)])


def rel(a, b):
    return float(np.linalg.norm(flat(a) - flat(b)) / np.linalg.norm(flat(b)))


def slope(xs, ys):
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def signals(n_steps, drive=DRIVE):
    tm = midpoint_times(T, n_steps)
    return sample_signal(drive, tm), sample_signal(TARGET, tm)


@pytest.fixture(scope="module")
def osc():
    system = six_oscillators()
    theta = random_oscillator_params(1)
    x0 = (jnp.zeros(6).at[0].set(0.3), jnp.zeros(6).at[2].set(-0.2))
    return system, theta, x0


@pytest.fixture(scope="module")
def osc_adjoint(osc):
    system, theta, x0 = osc
    return adjoint_gradient(system, theta, x0, DRIVE, TARGET, T=T, n_steps=2000)


def test_rhel_matches_autodiff_and_adjoint_on_six_oscillators(osc, osc_adjoint):
    system, theta, x0 = osc
    u, y = signals(100)
    loss, g, gx = rhel_gradient(system, theta, x0, u, y, dt=T / 100, gradient=RHEL(epsilon=1e-3))
    loss_a, g_a, gx_a = autodiff_gradient(system, theta, x0, u, y, dt=T / 100)
    loss_j, g_j, gx_j = osc_adjoint
    assert float(loss) == pytest.approx(float(loss_a), rel=1e-14)
    # RHEL == the exact gradient of the discrete loss up to the O(eps^2) bias (measured 1.05e-6, 1.0e-6).
    assert rel(g, g_a) < 2e-6
    assert rel(gx, gx_a) < 2e-6
    # ... and the continuous adjoint up to the leapfrog O(dt^2) error (measured 8.7e-4, 2.2e-4 at dt = 0.05).
    assert rel(g, g_j) < 2e-3
    assert rel(gx, gx_j) < 1e-3
    assert float(loss) == pytest.approx(float(loss_j), rel=1e-3)
    cos = flat(g) @ flat(g_j) / np.linalg.norm(flat(g)) / np.linalg.norm(flat(g_j))
    assert cos > 1 - 1e-6


@pytest.mark.parametrize(
    ("estimator", "expected", "tol"), [("central", 2.0, 0.15), ("one_sided", 1.0, 0.15), ("richardson", 4.0, 0.2)]
)
def test_eps_convergence_order_oscillators(osc, estimator, expected, tol):
    """Bias vs eps against the eps -> 0 limit (the discrete gradient): slope 2 central, 1 one-sided, 4 Richardson
    (the library's estimator table serves physics too; measured 4.01 over eps = 0.4 .. 0.1)."""
    system, theta, x0 = osc
    u, y = signals(100)
    _, g_a, gx_a = autodiff_gradient(system, theta, x0, u, y, dt=T / 100)
    epss = [0.4, 0.2, 0.1, 0.05]
    errs, errs_x = [], []
    for eps in epss:
        _, g, gx = rhel_gradient(
            system, theta, x0, u, y, dt=T / 100, gradient=RHEL(epsilon=eps, estimator=estimator), check=False
        )
        errs.append(rel(g, g_a))
        errs_x.append(rel(gx, gx_a))
    assert abs(slope(epss, errs) - expected) < tol  # measured 1.98 / 1.05 / 4.0
    assert abs(slope(epss, errs_x) - expected) < tol  # measured 2.00 / 0.99
    assert np.all(np.diff(errs) < 0)


def test_eps_convergence_order_fput():
    """The same on the nonlinear FPUT chain (measured 2.03)."""
    system, theta = fput_chain(4), random_fput_params(1)
    x0 = (jnp.zeros(4).at[0].set(0.5), jnp.zeros(4))
    u, y = signals(100, multisine.random(0, amp=2.0))
    _, g_a, _ = autodiff_gradient(system, theta, x0, u, y, dt=T / 100)
    epss = [0.4, 0.2, 0.1]
    errs = [
        rel(rhel_gradient(system, theta, x0, u, y, dt=T / 100, gradient=RHEL(epsilon=e), check=False)[1], g_a)
        for e in epss
    ]
    assert abs(slope(epss, errs) - 2.0) < 0.15
    assert errs[-1] < 5e-3  # measured 2.6e-3


def test_dt_convergence_order_to_adjoint(osc, osc_adjoint):
    """RHEL (eps -> 0) converges to the continuous adjoint at the leapfrog's order 2 (measured 2.00)."""
    system, theta, x0 = osc
    _, g_j, gx_j = osc_adjoint
    ks = [100, 200]
    errs, errs_x = [], []
    for k in ks:
        u, y = signals(k)
        _, g, gx = rhel_gradient(system, theta, x0, u, y, dt=T / k, gradient=RHEL(epsilon=1e-4), check=False)
        errs.append(rel(g, g_j))
        errs_x.append(rel(gx, gx_j))
    dts = [T / k for k in ks]
    assert abs(slope(dts, errs) - 2.0) < 0.1
    assert abs(slope(dts, errs_x) - 2.0) < 0.1
    assert errs[-1] < 3e-4  # measured 2.2e-4


def test_adjoint_reference_is_fourth_order(osc, osc_adjoint):
    system, theta, x0 = osc
    _, g_ref, _ = osc_adjoint
    errs = [rel(adjoint_gradient(system, theta, x0, DRIVE, TARGET, T=T, n_steps=n)[1], g_ref) for n in (100, 200)]
    assert abs(np.log2(errs[0] / errs[1]) - 4.0) < 0.3  # measured 4.18


def test_implicit_midpoint_nonseparable_matches_adjoint():
    """Non-separable energy, implicit midpoint: RHEL -> adjoint at order 2 in dt (measured errors 6.9e-4 and
    1.7e-4 at K = 50, 100: slope 2.00). (RHEL vs autodiff through the midpoint solver: 4.4e-9 at eps =
    1e-4.)"""
    system = soft_oscillators(3)
    theta = {
        "m": jnp.log(jnp.array([1.0, 0.7, 1.3])),
        "k": jnp.log(jnp.array([1.0, 1.5, 0.8])),
        "c": jnp.log(jnp.array([0.3, 0.5])),
        "a": jnp.array([0.3, -0.2, 0.4]),
    }
    x0 = (jnp.array([0.5, 0.0, -0.3]), jnp.array([0.0, 0.4, 0.0]))
    _, g_j, gx_j = adjoint_gradient(system, theta, x0, DRIVE, TARGET, T=T, n_steps=2000)
    errs, errs_x = [], []
    for k in (50, 100):
        u, y = signals(k)
        _, g, gx = rhel_gradient(
            system, theta, x0, u, y, dt=T / k, gradient=RHEL(epsilon=1e-4), integrator=ImplicitMidpoint()
        )
        errs.append(rel(g, g_j))
        errs_x.append(rel(gx, gx_j))
    assert abs(np.log2(errs[0] / errs[1]) - 2.0) < 0.2
    assert abs(np.log2(errs_x[0] / errs_x[1]) - 2.0) < 0.2
    assert errs[1] < 5e-4


def test_unnudged_echo_retraces_forward_and_running_accumulator(osc):
    """eps = 0: the momentum-flipped echo with the reversed input returns exactly to the flipped initial
    state; the recorded running estimate ends at the rhel_gradient value (one echo routine for both)."""
    system, theta, x0 = osc
    u, y = signals(100)
    one_sided = RHEL(epsilon=1e-3, estimator="one_sided")
    er = echo_trajectory(system, theta, x0, u, y, dt=T / 100, gradient=one_sided)
    assert float(er.epsilon[1]) == 0.0
    np.testing.assert_allclose(er.phi[1, -1], x0[0], atol=1e-12)
    np.testing.assert_allclose(er.pi[1, -1], -x0[1], atol=1e-12)
    assert float(jnp.max(jnp.abs(er.phi[1] - er.phi[0]))) > 1e-6  # the nudged echo does not retrace
    _, g, _ = rhel_gradient(system, theta, x0, u, y, dt=T / 100, gradient=one_sided, check=False)
    np.testing.assert_allclose(flat(jax.tree_util.tree_map(lambda a: a[-1], er.running)), flat(g), rtol=1e-12)
