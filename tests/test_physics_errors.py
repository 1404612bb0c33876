"""Bad input raises an error naming the problem: broken time-reversal symmetry (ContractError, the library's one
contract error), unstable step and NaN states (PhysicsError), gradient methods given as strings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rhel import RHEL, ContractError, Energy, check_time_reversal
from rhel.physics import (
    Leapfrog,
    PhysicsError,
    check_energy_drift,
    magnetic_particle,
    random_oscillator_params,
    rhel_gradient,
    six_oscillators,
    soft_oscillators,
)

K = 40


@pytest.fixture(scope="module")
def osc():
    return six_oscillators(), random_oscillator_params(1)


def test_not_time_reversal_invariant_energy_is_rejected():
    system = magnetic_particle(field=1.0)
    theta = {"k": jnp.asarray(1.0)}
    key = jax.random.key(0)
    with pytest.raises(ContractError, match="not time-reversal invariant"):
        check_time_reversal(system.energy, theta, 0.0, key=key, state_size=2)
    u = jnp.zeros(K)
    with pytest.raises(ContractError, match=r"H\(q, p\) = H\(q, -p\)"):
        rhel_gradient(system, theta, (jnp.ones(2), jnp.zeros(2)), u, u, dt=0.05)
    # ... while a zero field is time-reversal invariant and passes.
    assert check_time_reversal(magnetic_particle(field=0.0).energy, theta, 0.0, key=key, state_size=2) == 0.0


def test_unstable_time_step_is_rejected(osc):
    system, theta = osc
    u = jnp.zeros(K)
    # Largest normal-mode frequency of these parameters 2.08: dt = 1.5 is beyond leapfrog's omega*dt < 2.
    with pytest.raises(PhysicsError, match="unstable time step: relative energy drift"):
        rhel_gradient(system, theta, (jnp.zeros(6), jnp.zeros(6)), u, u, dt=1.5)
    drift = check_energy_drift(system, theta, 0.05, K)
    assert drift < 1e-2  # a stable step: O((omega dt)^2) bounded error (measured 1.2e-4)


def test_nan_state_is_rejected(osc):
    system, theta = osc
    u = jnp.zeros(K).at[10].set(jnp.nan)
    with pytest.raises(PhysicsError, match="non-finite state .* forward pass at step 10"):
        rhel_gradient(system, theta, (jnp.zeros(6), jnp.zeros(6)), u, jnp.zeros(K), dt=0.05)
    bad_theta = dict(theta, m=theta["m"].at[0].set(jnp.nan))
    with pytest.raises(ContractError, match="not finite"):
        rhel_gradient(system, bad_theta, (jnp.zeros(6), jnp.zeros(6)), jnp.zeros(K), jnp.zeros(K), dt=0.05)


def test_misconfigured_systems_are_rejected(osc):
    system, theta = osc
    with pytest.raises(ContractError, match="separable"):
        Leapfrog().check(soft_oscillators(2).energy)
    with pytest.raises(ContractError, match="either kinetic"):
        Energy()
    u = jnp.zeros(K)
    with pytest.raises(ValueError, match="estimator"):
        rhel_gradient(system, theta, (jnp.zeros(6), jnp.zeros(6)), u, u, dt=0.05, gradient=RHEL(estimator="two-sided"))
    with pytest.raises(ValueError, match="differ in length"):
        rhel_gradient(system, theta, (jnp.zeros(6), jnp.zeros(6)), u, u[:-1], dt=0.05)
    assert np.isfinite(float(rhel_gradient(system, theta, (jnp.zeros(6), jnp.zeros(6)), u, u, dt=0.05)[0]))


def test_gradient_methods_are_objects_not_strings(osc):
    from rhel.physics.train import train

    system, theta = osc
    u, x0 = jnp.zeros(K), (jnp.zeros(6), jnp.zeros(6))
    with pytest.raises(TypeError, match=r"rhel\.RHEL\(epsilon=\.\.\.\), rhel\.BPTT\(\) or rhel\.physics\.Adjoint\(\)"):
        train(system, theta, x0, u, u, dt=0.05, gradient="rhel", steps=1)
    with pytest.raises(TypeError, match=r"must be a rhel\.RHEL"):
        rhel_gradient(system, theta, x0, u, u, dt=0.05, gradient="rhel")
