"""HRU forward passes: parallel vs sequential scans, gradient-method independence, the energy contract, bad input.

float64 (conftest): the scan comparison is asserted at 1e-12.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rhel

KEY = jax.random.key(0)


def _inputs(length=64, size=3, seed=1):
    return jax.random.normal(jax.random.key(seed), (length, size))


@pytest.mark.parametrize("complex_state", [False, True])
def test_linear_parallel_scan_matches_sequential(complex_state):
    unit_seq = rhel.LinearHRU(3, 16, complex_state=complex_state, scan="sequential", key=KEY)
    unit_par = rhel.LinearHRU(3, 16, complex_state=complex_state, scan="parallel", key=KEY)
    u = _inputs(300)
    y_seq, y_par = eqx.filter_jit(unit_seq)(u), eqx.filter_jit(unit_par)(u)
    assert float(jnp.max(jnp.abs(y_seq - y_par))) <= 1e-12 * max(1.0, float(jnp.max(jnp.abs(y_seq))))
    # and a plain Python loop of the leapfrog step equations (the reference)
    th = unit_seq.energy_params()
    s, a, b, c = th["step"], th["A"], unit_seq.drive_matrix(), unit_seq.readout_matrix()
    q = p = np.zeros(unit_seq.state_size)
    ys = []
    for uk in np.asarray(u):
        qh = q + 0.5 * s * p
        p = p - s * (a * qh - b @ uk)
        q = qh + 0.5 * s * p
        ys.append(c @ q + unit_seq.d * uk)
    np.testing.assert_allclose(np.asarray(y_seq), np.stack(ys), rtol=1e-12, atol=1e-12)


def test_parallel_scan_gradients_match_sequential():
    unit = rhel.LinearHRU(2, 8, scan="sequential", key=KEY)
    unit_par = rhel.LinearHRU(2, 8, scan="parallel", key=KEY)
    u = _inputs(50, 2)

    def loss(m):
        return jnp.sum(jnp.sin(m(u)))

    g1, g2 = eqx.filter_jit(eqx.filter_grad(loss))(unit), eqx.filter_jit(eqx.filter_grad(loss))(unit_par)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", ["linear", "nonlinear"])
def test_gradient_method_never_changes_the_output(make):
    unit = rhel.LinearHRU(3, 8, key=KEY) if make == "linear" else rhel.NonlinearHRU(3, 8, key=KEY)
    u = _inputs(40)
    ref = unit(u, gradient=rhel.BPTT())
    for method in (rhel.RHEL(), rhel.RHEL(estimator="one_sided"), rhel.CheckpointedBPTT()):
        np.testing.assert_allclose(unit(u, gradient=method), ref, rtol=1e-13, atol=1e-13)


def test_nonlinear_coupling_log_cosh_and_its_derivatives():
    """The nonlinear HRU's coupling ``log cosh`` (custom JVP sharing one exponential with its derivative ``tanh``):
    value, first and second derivative equal the textbook formulas within 1e-14 (float64), no overflow at |x| = 1e3."""
    from rhel.units.nonlinear import log_cosh

    x = jnp.concatenate([jnp.linspace(-30.0, 30.0, 601), jnp.array([0.0, -1e3, 1e3])])
    moderate = jnp.abs(x) <= 30
    np.testing.assert_allclose(log_cosh(x)[moderate], jnp.log(jnp.cosh(x[moderate])), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(log_cosh(x)[-2:], 1e3 - np.log(2.0), rtol=1e-15)
    d1 = jax.vmap(jax.grad(log_cosh))(x)
    d2 = jax.vmap(jax.grad(jax.grad(log_cosh)))(x)
    np.testing.assert_allclose(d1, jnp.tanh(x), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(d2, 1.0 - jnp.tanh(x) ** 2, rtol=1e-12, atol=1e-14)
    assert float(d2[601]) == 1.0  # at x = 0 exactly (where |x| is not differentiable)


def _kinetic(p, th):
    return 0.5 * p @ th["inv_mass"] @ p


def _potential(q, th, u):
    return 0.5 * q @ th["stiffness"] @ q + 0.25 * jnp.sum(q**4) - q @ (th["B"] @ u)


def _coupled_params(n=4, m=2, seed=3):
    k = jax.random.split(jax.random.key(seed), 3)
    a = jax.random.normal(k[0], (n, n)) * 0.3
    return {
        "inv_mass": jnp.eye(n) + a @ a.T,
        "stiffness": jnp.eye(n) + 0.2 * (a + a.T),
        "B": jax.random.normal(k[2], (n, m)),
    }


def test_energy_hru_runs_and_passes_contract_check():
    unit = rhel.EnergyHRU(_kinetic, _potential, _coupled_params(), state_size=4, in_size=2, step=0.1, key=KEY)
    y = unit(_inputs(30, 2))
    assert y.shape == (30, 4)
    assert rhel.check_time_reversal(unit, key=KEY) < 1e-12


def test_energy_hru_detects_kinetic_energy_not_even_in_momentum():
    def odd_kinetic(p, th):
        return 0.5 * jnp.sum(p**2) + jnp.sum(th["v"] * p)  # a linear term in p breaks T(p) = T(-p)

    with pytest.raises(rhel.ContractError, match="not even in the momenta"):
        rhel.EnergyHRU(
            odd_kinetic,
            lambda q, th, u: 0.5 * jnp.sum(q**2) - q @ u,
            {"v": jnp.ones(2)},
            state_size=2,
            in_size=2,
            key=KEY,
        )


def test_round_trip_check_reports_a_replay_that_does_not_come_back():
    # an explosive quartic potential with a huge step: the forward run overflows, so the replay cannot return
    with pytest.raises(rhel.ContractError, match="does not come back"):
        rhel.EnergyHRU(
            lambda p, th: 0.5 * jnp.sum(p**2),
            lambda q, th, u: jnp.sum(q**4) ** 2 - q @ u,
            {},
            state_size=2,
            in_size=2,
            step=50.0,
            key=KEY,
        )


def test_bad_inputs_raise_clear_errors():
    unit = rhel.LinearHRU(3, 4, key=KEY)
    with pytest.raises(ValueError, match=r"shape \(length, 3\)"):
        unit(jnp.zeros((10, 2)))
    with pytest.raises(ValueError, match=r"shape \(length, 3\)"):
        unit(jnp.zeros((2, 10, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        unit(jnp.zeros((10, 3), dtype=jnp.int32))
    with pytest.raises(ValueError, match="empty"):
        unit(jnp.zeros((0, 3)))
    with pytest.raises(TypeError, match="gradient-method object"):
        unit(jnp.zeros((10, 3)), gradient="rhel")
    bad = jnp.zeros((10, 3)).at[4, 1].set(jnp.nan)
    with pytest.raises(Exception, match="NaN or Inf"):
        unit(bad)
    with pytest.raises(Exception, match="NaN or Inf"):
        jax.jit(lambda x: unit(x))(bad.at[4, 1].set(jnp.inf))
    nan_unit = eqx.tree_at(lambda m: m.b_re, unit, unit.b_re.at[0, 0].set(jnp.nan))
    with pytest.raises(Exception, match="drive matrix B contains NaN"):
        nan_unit(jnp.zeros((10, 3)))
    with pytest.raises(ValueError, match="positive integer"):
        rhel.LinearHRU(3, 0, key=KEY)
    with pytest.raises(ValueError, match="step must be a positive"):
        rhel.NonlinearHRU(3, 4, step=-1.0, key=KEY)
    with pytest.raises(ValueError, match="scan must be"):
        rhel.LinearHRU(3, 4, scan="fast", key=KEY)
    with pytest.raises(ValueError, match="in_size must be a positive integer"):
        rhel.EnergyHRU(
            lambda p, th: jnp.sum(p**2), lambda q, th, u: jnp.sum(q**2), {}, state_size=2, in_size=0, key=KEY
        )
