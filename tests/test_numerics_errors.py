"""Issue 11 (numerics): the engine is never silently wrong, one test per kind of bad input.

float64 (conftest) where exactness is claimed (resynchronised linear RHEL == BPTT at 1e-10); the re-synchronised
float32 echo on a chaotic quartic energy is measured in float32 on purpose.
"""

import sys
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rhel
from helpers import tree_rel_errs

KEY = jax.random.key(0)
METHODS = [rhel.BPTT(), rhel.CheckpointedBPTT(), rhel.RHEL(), rhel.RHEL(estimator="one_sided")]


def _loss_grad(unit, method, u, target, weights=None):
    def loss(unit):
        y = jax.vmap(lambda x: unit(x, gradient=method))(u)
        err = jnp.mean((y - target) ** 2, axis=(1, 2))
        return jnp.sum(err if weights is None else weights * err)

    return eqx.filter_jit(eqx.filter_grad(loss))(unit)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: type(m).__name__ + getattr(m, "estimator", ""))
def test_nan_in_targets_blames_the_loss_gradient_not_the_echo(method):
    unit = rhel.NonlinearHRU(2, 4, key=KEY)
    u = jax.random.normal(jax.random.key(1), (2, 12, 2))
    target = jnp.zeros((2, 12, 2)).at[1, 5, 0].set(jnp.nan)
    with pytest.raises(eqx.EquinoxRuntimeError, match="loss gradient w.r.t. the outputs of NonlinearHRU is non-finite"):
        jax.block_until_ready(_loss_grad(unit, method, u, target))


def test_bad_state0_and_bad_energy_functions_name_the_argument():
    unit = rhel.LinearHRU(2, 3, key=KEY)  # 6 real state coordinates (complex state)
    u = jnp.ones((5, 2))
    with pytest.raises(eqx.EquinoxRuntimeError, match=r"LinearHRU state0 \(q0\) contains NaN"):
        unit(u, state0=(jnp.full(6, jnp.nan), jnp.zeros(6)))
    with pytest.raises(ValueError, match=r"state0 must be \(q0, p0\) of shape \(6,\)"):
        unit(u, state0=(jnp.zeros(3), jnp.zeros(3)))
    with pytest.raises(TypeError, match="state0 must be a pair"):
        unit(u, state0=jnp.zeros(6))

    def kinetic(p, th):
        return 0.5 * jnp.sum(p**2)

    with pytest.raises(rhel.ContractError, match=r"kinetic\(p, params\) must return a scalar, got shape \(3,\)"):
        rhel.EnergyHRU(lambda p, th: 0.5 * p**2, lambda q, th, u: 0.5 * jnp.sum(q**2), {}, state_size=3, in_size=3,
                       key=KEY)  # fmt: skip
    for check in (True, False):  # the signature is checked even without the contract check
        with pytest.raises(rhel.ContractError, match=r"potential\(q, params, u\) failed .*TypeError"):
            rhel.EnergyHRU(kinetic, lambda q, th: jnp.sum(q**2), {}, state_size=3, in_size=3, check=check, key=KEY)
    # a physical system's energy goes through the same check (rhel.physics validates with check_time_reversal)
    energy = rhel.Energy(kinetic=kinetic, potential=lambda q, th, f: q**2)
    with pytest.raises(rhel.ContractError, match=r"spring: the energy function potential\(q, theta, f\) must return"):
        rhel.check_time_reversal(energy, {}, jnp.zeros(()), key=KEY, steps=0, state_size=2, name="spring")


def test_a_diverging_forward_pass_names_the_unstable_step():
    unit = rhel.NonlinearHRU(2, 4, step=50.0, key=KEY)
    u = jax.random.normal(jax.random.key(1), (200, 2))
    with pytest.raises(eqx.EquinoxRuntimeError, match="forward pass of NonlinearHRU diverged .*step size `step`"):
        jax.block_until_ready(eqx.filter_jit(lambda m, x: m(x))(unit, u))


def test_epsilon_outside_the_accurate_range_warns():
    u = jax.random.normal(jax.random.key(1), (1, 10, 2))
    target = jnp.zeros((1, 10, 2))
    nonlinear = rhel.NonlinearHRU(2, 4, key=KEY)
    with pytest.warns(rhel.EpsilonWarning, match=r"epsilon=1e-30 is outside the accurate range \[2.2e-14, 1\]"):
        _loss_grad(nonlinear, rhel.RHEL(epsilon=1e-30), u, target)
    with pytest.warns(rhel.EpsilonWarning, match=r"epsilon=1e\+06 .*estimator's bias dominates"):
        _loss_grad(nonlinear, rhel.RHEL(epsilon=1e6, check="off"), u, target)
    with warnings.catch_warnings():  # the defaults, and a large eps where central RHEL is exact (linear), are quiet
        warnings.simplefilter("error", rhel.EpsilonWarning)
        _loss_grad(nonlinear, rhel.RHEL(), u, target)
        _loss_grad(rhel.LinearHRU(2, 3, key=KEY), rhel.RHEL(epsilon=1e6), u, target)
    assert rhel.gradients.numerics.accurate_epsilon_range(jnp.float32) == pytest.approx((1.19e-5, 1.0), rel=1e-2)


def test_one_sided_gives_exactly_zero_gradient_to_sequences_without_loss():
    unit = rhel.NonlinearHRU(3, 8, key=KEY)
    u = jax.random.normal(jax.random.key(1), (4, 64, 3))
    target = jax.random.normal(jax.random.key(2), (4, 64, 3))
    weights = jnp.asarray([1.0, 1.0, 0.0, 0.0])  # two padded / masked sequences
    method = rhel.RHEL(estimator="one_sided")
    masked = _loss_grad(unit, method, u[2:], target[2:], weights[2:])
    leaves = jax.tree_util.tree_leaves(eqx.filter(masked, eqx.is_array))
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in leaves)
    bptt = rhel.BPTT()
    errs = tree_rel_errs(_loss_grad(unit, method, u, target, weights), _loss_grad(unit, bptt, u, target, weights))
    unmasked = tree_rel_errs(_loss_grad(unit, method, u[:2], target[:2]), _loss_grad(unit, bptt, u[:2], target[:2]))
    assert max(errs) == pytest.approx(max(unmasked), rel=1e-6)  # the masked rows add nothing, not noise / eps
    assert max(errs) < 1e-4


def _shifted_kinetic_unit():
    """T = 1/2 |p - a|^2: time-reversal invariant only while a = 0 (as at construction)."""
    return rhel.EnergyHRU(
        lambda p, th: 0.5 * jnp.sum((p - th["a"]) ** 2),
        lambda q, th, u: 0.5 * jnp.sum(q**2) + 0.1 * jnp.sum(q**4) - q @ u,
        {"a": jnp.zeros(4)},
        state_size=4,
        in_size=4,
        key=KEY,
    )


def test_echo_that_does_not_return_raises_contract_error_at_run_time():
    unit = _shifted_kinetic_unit()
    u = jax.random.normal(jax.random.key(1), (2, 50, 4))
    target = jax.random.normal(jax.random.key(2), (2, 50, 4))
    _loss_grad(unit, rhel.RHEL(), u, target)  # a = 0: the echo returns, no error
    moved = eqx.tree_at(lambda m: m.params["a"], unit, jnp.full(4, 0.5))
    with pytest.raises(eqx.EquinoxRuntimeError, match="ContractError: RHEL's echo did not return"):
        jax.block_until_ready(_loss_grad(moved, rhel.RHEL(), u, target))
    with pytest.warns(rhel.ContractWarning, match="echo did not return to the initial state"):
        jax.block_until_ready(_loss_grad(moved, rhel.RHEL(check="warn"), u, target))
    with warnings.catch_warnings():
        warnings.simplefilter("error", rhel.ContractWarning)
        jax.block_until_ready(_loss_grad(moved, rhel.RHEL(check="off"), u, target))
    with pytest.raises(ValueError, match="RHEL check must be one of"):
        rhel.RHEL(check="loud")


def test_resync_keeps_linear_rhel_exact():
    unit = rhel.LinearHRU(3, 8, key=KEY)
    u = jax.random.normal(jax.random.key(1), (2, 70, 3))
    target = jax.random.normal(jax.random.key(2), (2, 70, 3))
    ref = _loss_grad(unit, rhel.BPTT(), u, target)
    for k in (1, 16, 100):  # every step, a length that does not divide 70, longer than the sequence
        assert max(tree_rel_errs(_loss_grad(unit, rhel.RHEL(resync_every=k), u, target), ref)) <= 1e-10
    with pytest.raises(ValueError, match="resync_every needs a symmetric estimator"):
        rhel.RHEL(estimator="one_sided", resync_every=4)
    with pytest.raises(ValueError, match="resync_every must be a positive integer"):
        rhel.RHEL(resync_every=0)


def test_resync_makes_float32_rhel_usable_on_a_chaotic_energy():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from unit_agreement import RESYNC, coupled_unit, grads

    unit = coupled_unit(jnp.float32)
    u = jax.random.normal(jax.random.key(1), (4, 256, unit.in_size), jnp.float32)
    target = jax.random.normal(jax.random.key(2), (4, 256, unit.out_size), jnp.float32)
    ref = grads(unit, rhel.BPTT(), u, target)
    plain = max(tree_rel_errs(grads(unit, rhel.RHEL(check="off"), u, target), ref))
    resync = max(tree_rel_errs(grads(unit, RESYNC, u, target), ref))
    assert plain > 0.5 and resync <= 1e-2, (plain, resync)
    assert np.isfinite(resync)


def test_renormalised_resync_keeps_a_long_nonlinear_echo_linear_in_float64():
    # A NonlinearHRU at step 0.3 over 4,096 steps amplifies the echoes' difference past the linear regime: the plain
    # echo is wrong (and says so); re-synchronised, the anchors scale the difference back to one nudge and the gradient
    # is BPTT's (before the renormalisation, re-anchoring the mean alone gave 1.2 here).
    unit = rhel.NonlinearHRU(4, 16, step=0.3, key=KEY)
    u = jax.random.normal(jax.random.key(1), (2, 4096, 4))
    target = jax.random.normal(jax.random.key(2), (2, 4096, 4))
    ref = _loss_grad(unit, rhel.BPTT(), u, target)
    with pytest.warns(rhel.ContractWarning, match="left their linear regime"):
        plain = max(tree_rel_errs(jax.block_until_ready(_loss_grad(unit, rhel.RHEL(check="warn"), u, target)), ref))
    with warnings.catch_warnings():
        warnings.simplefilter("error", rhel.ContractWarning)
        resync = max(tree_rel_errs(jax.block_until_ready(_loss_grad(unit, rhel.RHEL(resync_every=32), u, target)), ref))
        richardson = rhel.RHEL(estimator="richardson", resync_every=32)
        resync_r = max(tree_rel_errs(jax.block_until_ready(_loss_grad(unit, richardson, u, target)), ref))
    assert plain > 0.5 and resync <= 1e-6 and resync_r <= 1e-6, (plain, resync, resync_r)


def test_echo_linearity_check_semantics():
    """The linearity ratio (a symmetric estimator's raw return error over its echoes' spread) raises above
    LINEARITY_TOLERANCE, warns with check="warn" and is ignored with "off"; below it nothing happens."""
    from rhel.gradients.numerics import LINEARITY_TOLERANCE, echo_return_check

    grads = jnp.ones(3)
    for ratio in (0.0, 0.5 * LINEARITY_TOLERANCE):
        assert jnp.array_equal(echo_return_check(grads, jnp.zeros(()), jnp.float32, "raise", jnp.asarray(ratio)), grads)
    bad = jnp.asarray(2.0 * LINEARITY_TOLERANCE)
    with pytest.raises(eqx.EquinoxRuntimeError, match="ContractError: RHEL's echoes left their linear regime"):
        jax.block_until_ready(echo_return_check(grads, jnp.zeros(()), jnp.float32, "raise", bad))
    with pytest.warns(rhel.ContractWarning, match=r"left their linear regime \(their mean strayed .* by 0.6 > 0.3"):
        jax.block_until_ready(echo_return_check(grads, jnp.zeros(()), jnp.float32, "warn", bad))
    with warnings.catch_warnings():
        warnings.simplefilter("error", rhel.ContractWarning)
        jax.block_until_ready(echo_return_check(grads, jnp.zeros(()), jnp.float32, "off", bad))


def test_long_nonlinear_float32_run_that_leaves_the_linear_regime_is_refused():
    """A nonlinear HSSM over 4,096 steps in float32: the echoes return within the return check's allowance, but their
    mean strays from the forward pass by more than 0.3 of their spread, and the gradient is off by tens of percent.
    Training stops with a ContractError; `rhel gradcheck`, which measures the error itself, shows it and warns."""
    from rhel.models import batch_loss
    from rhel.reports.gradcheck import gradients, make_problem
    from rhel.training.config import DataConfig, ModelConfig, TrainConfig

    data = DataConfig("long_range_pattern", options={"length": 4096, "n_train": 2, "n_val": 1, "n_test": 1})
    config = TrainConfig(data=data, model=ModelConfig(unit="nonlinear", hidden=16, state_size=16, num_blocks=1))
    problem = make_problem(config.validate(), batch_size=1)
    with pytest.warns(rhel.ContractWarning, match="left their linear regime"):
        got = gradients(problem, "float32", "rhel")
    ref = gradients(problem, "float32", "bptt")
    assert max(tree_rel_errs([g for *_, g in got], [g for *_, g in ref])) > 0.1
    model, state, x, y, mask = problem.at("float32")

    @eqx.filter_jit
    def grad(model):
        return eqx.filter_grad(lambda m: batch_loss(m, state, x, y, key=KEY, gradient=rhel.RHEL())[0])(model)

    with pytest.raises(eqx.EquinoxRuntimeError, match="ContractError: RHEL's echoes left their linear regime"):
        jax.block_until_ready(grad(model))
