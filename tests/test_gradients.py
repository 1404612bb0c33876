"""Gradient methods: RHEL against BPTT, BPTT against finite differences, estimator orders, jit/vmap, bad settings.

float64 (conftest): the exactness of RHEL on linear HRUs is asserted at relative error 1e-10, far below float32.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import rhel
from helpers import tree_rel_errs

KEY = jax.random.key(0)
LENGTH = 60


def _data(in_size, out_size, length=LENGTH):
    u = jax.random.normal(jax.random.key(1), (length, in_size))
    target = jax.random.normal(jax.random.key(2), (length, out_size))
    return u, target


@eqx.filter_jit
def _grads(params, static, method, u, target, q0, p0):
    def loss(params, u, q0, p0):
        y = eqx.combine(params, static)(u, gradient=method, state0=(q0, p0))
        return jnp.mean((y - target) ** 2) + 0.1 * jnp.mean(jnp.tanh(y[-1]))

    return jax.grad(loss, argnums=(0, 1, 2, 3))(params, u, q0, p0)


def _all_grads(unit, method, length=LENGTH):
    """Gradients of a per-step loss w.r.t. every parameter, the inputs and the initial state (one jit per method)."""
    u, target = _data(unit.in_size, unit.out_size, length)
    n = unit.state_size
    q0 = 0.3 * jax.random.normal(jax.random.key(5), (n,))
    p0 = 0.3 * jax.random.normal(jax.random.key(6), (n,))
    params, static = eqx.partition(unit, eqx.is_inexact_array)
    return _grads(params, static, method, u, target, q0, p0)


def _kinetic(p, th):
    return 0.5 * p @ th["inv_mass"] @ p


def _potential(q, th, u):
    return 0.5 * q @ th["stiffness"] @ q + 0.25 * jnp.sum(q**4) + jnp.sum(jnp.cos(q)) - q @ (th["B"] @ u)


def coupled_energy_unit():
    """A user-written nonlinear HRU with dense (non-diagonal) couplings in both T and V."""
    k = jax.random.split(jax.random.key(3), 3)
    a = 0.3 * jax.random.normal(k[0], (5, 5))
    params = {
        "inv_mass": jnp.eye(5) + a @ a.T,
        "stiffness": jnp.eye(5) + 0.2 * (a + a.T),
        "B": jax.random.normal(k[2], (5, 3)),
    }
    return rhel.EnergyHRU(
        _kinetic, _potential, params, state_size=5, in_size=3, out_size=2, step=0.2, train_step=True, key=KEY
    )


UNITS = {
    "linear-real": lambda: rhel.LinearHRU(3, 6, complex_state=False, key=KEY),
    "linear-complex": lambda: rhel.LinearHRU(3, 6, complex_state=True, key=KEY),
    "nonlinear": lambda: rhel.NonlinearHRU(3, 6, step=0.3, key=KEY),
    "energy": coupled_energy_unit,
}


@pytest.mark.parametrize("kind", ["linear-real", "linear-complex"])
@pytest.mark.parametrize("epsilon", [None, 1e-3, 0.1, 1.0, 10.0])
def test_rhel_is_exact_for_linear_hrus(kind, epsilon):
    unit = UNITS[kind]()
    assert unit.train_step
    ref = _all_grads(unit, rhel.BPTT())
    eps = None if epsilon is None else jnp.asarray(epsilon)  # an array epsilon: one compilation serves all values
    errs = tree_rel_errs(_all_grads(unit, rhel.RHEL(epsilon=eps)), ref)
    assert max(errs) <= 1e-10, errs
    errs_rich = tree_rel_errs(_all_grads(unit, rhel.RHEL(epsilon=eps, estimator="richardson")), ref)
    assert max(errs_rich) <= 1e-10, errs_rich


def _slope(eps, errs):
    return float(np.polyfit(np.log(eps), np.log(errs), 1)[0])


ORDERS = {"central": 2, "one_sided": 1, "richardson": 4}


@pytest.mark.parametrize(
    ("kind", "estimator"),
    [(k, e) for k in ("nonlinear", "energy") for e in ORDERS] + [("linear-complex", "one_sided")],
)  # the symmetric estimators are exact on linear HRUs (asserted above); the one-sided one is not
def test_rhel_error_shrinks_with_the_estimators_order(kind, estimator):
    unit = UNITS[kind]()
    ref = _all_grads(unit, rhel.BPTT())
    # inside the asymptotic range of the strongly nonlinear user energy, above float64 rounding
    eps = {"central": 0.01, "one_sided": 0.002, "richardson": 0.01}[estimator] * np.array([1.0, 0.5, 0.25])
    worst = [
        max(tree_rel_errs(_all_grads(unit, rhel.RHEL(epsilon=jnp.asarray(e), estimator=estimator)), ref)) for e in eps
    ]
    slope = _slope(eps, worst)
    assert abs(slope - ORDERS[estimator]) <= 0.25, (slope, worst)
    # at the default epsilon the error is negligible in float64
    default_eps = jnp.asarray(rhel.default_epsilon(estimator, jnp.float64))
    default = max(tree_rel_errs(_all_grads(unit, rhel.RHEL(epsilon=default_eps, estimator=estimator)), ref))
    assert default <= 1e-6, default


def test_bptt_matches_finite_differences_of_the_loss():
    unit = rhel.NonlinearHRU(2, 4, step=0.3, key=KEY)
    u, target = _data(2, 2, 30)
    params, static = eqx.partition(unit, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def loss(flat):
        return jnp.mean((eqx.combine(unravel(flat), static)(u) - target) ** 2)

    g = jax.grad(loss)(flat)
    h = 1e-6
    for i in range(flat.size):
        e = jnp.zeros_like(flat).at[i].set(h)
        fd = (loss(flat + e) - loss(flat - e)) / (2 * h)
        assert abs(float(fd - g[i])) <= 1e-7 * max(1.0, abs(float(g[i]))), (i, float(fd), float(g[i]))


def test_checkpointed_bptt_equals_bptt():
    for kind in ("linear-complex", "nonlinear"):
        unit = UNITS[kind]()
        ref = _all_grads(unit, rhel.BPTT())
        for every in (None, 7, 60):
            assert max(tree_rel_errs(_all_grads(unit, rhel.CheckpointedBPTT(checkpoint_every=every)), ref)) <= 1e-12


@pytest.mark.parametrize(
    "method", [rhel.BPTT(), rhel.CheckpointedBPTT(), rhel.RHEL(), rhel.RHEL(estimator="one_sided"), rhel.RHEL(chunk=16)]
)
def test_methods_work_under_jit_and_vmap(method):
    unit = rhel.NonlinearHRU(3, 5, step=0.3, key=KEY)
    xs = jax.random.normal(jax.random.key(7), (4, 33, 3))

    def loss(unit, xs):
        return jnp.mean(jax.vmap(lambda x: unit(x, gradient=method))(xs) ** 2)

    g_jit = eqx.filter_jit(eqx.filter_grad(loss))(unit, xs)
    one = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.mean(m(x, gradient=rhel.BPTT()) ** 2)))
    g_ref = jax.tree_util.tree_map(lambda *gs: sum(gs) / len(gs), *[one(unit, x) for x in xs])
    tol = 1e-12 if not isinstance(method, rhel.RHEL) else 1e-6
    assert max(tree_rel_errs(g_jit, g_ref)) <= tol


def test_rhel_with_chunks_that_do_not_divide_the_length():
    unit = UNITS["linear-complex"]()
    ref = _all_grads(unit, rhel.BPTT(), length=37)
    for chunk in (5, 37, 100):  # not dividing the length, equal to it, longer than it
        assert max(tree_rel_errs(_all_grads(unit, rhel.RHEL(chunk=chunk), length=37), ref)) <= 1e-10


@pytest.mark.parametrize("estimator", ["central", "one_sided"])
def test_rhel_blocks_agree_when_input_and_output_sizes_differ(estimator):
    # the echo writes dL/du over the consumed output cotangent when the sizes agree, else into a buffer of its own
    # (this user energy: 3 inputs, 2 outputs); blocks change the rounding only
    unit = UNITS["energy"]()
    one_block = _all_grads(unit, rhel.RHEL(estimator=estimator, chunk=100), length=37)
    for chunk in (5, 16):
        blocks = _all_grads(unit, rhel.RHEL(estimator=estimator, chunk=chunk), length=37)
        assert max(tree_rel_errs(blocks, one_block)) <= 1e-10


def test_relative_epsilon_makes_the_echo_independent_of_the_loss_scale():
    unit = UNITS["nonlinear"]()
    u, target = _data(3, 3)

    def grads(scale, relative):
        def loss(m):
            return scale * jnp.mean((m(u, gradient=rhel.RHEL(epsilon=0.05, relative=relative)) - target) ** 2)

        return eqx.filter_jit(eqx.filter_grad(loss))(unit)

    base = grads(1.0, True)
    scaled = jax.tree_util.tree_map(lambda g: g / 1e4, grads(1e4, True))
    assert max(tree_rel_errs(scaled, base)) <= 1e-10
    # with absolute epsilon, a loss scale multiplies the nudge and changes the (biased) estimate
    abs_scaled = jax.tree_util.tree_map(lambda g: g / 1e4, grads(1e4, False))
    assert max(tree_rel_errs(abs_scaled, grads(1.0, False))) > 1e-6


def test_bad_settings_raise_clear_errors():
    for eps in (0.0, -1e-3, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="epsilon must be a positive finite"):
            rhel.RHEL(epsilon=eps)
    with pytest.raises(ValueError, match="unknown RHEL estimator"):
        rhel.RHEL(estimator="forward")
    with pytest.raises(ValueError, match="chunk must be a positive"):
        rhel.RHEL(chunk=0)
    with pytest.raises(ValueError, match="checkpoint_every"):
        rhel.CheckpointedBPTT(checkpoint_every=0)
    with pytest.raises(ValueError, match="epsilon must be a positive finite"):
        rhel.RHEL(epsilon=jnp.asarray([0.1, 0.2]))


def test_rhel_reports_a_diverging_echo_instead_of_returning_nan():
    unit = rhel.NonlinearHRU(2, 3, step=0.3, key=KEY)
    u = jax.random.normal(jax.random.key(1), (20, 2))

    def loss(m):
        return jnp.sum(m(u, gradient=rhel.RHEL(epsilon=1e300, relative=False)) ** 2)

    with pytest.raises(Exception, match="non-finite gradient"):
        eqx.filter_grad(loss)(unit)
