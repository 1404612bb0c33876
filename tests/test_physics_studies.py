"""What breaks RHEL (damping) and what a device must deliver (read-out precision, parameter stability)."""

import numpy as np

from rhel.physics.studies import damping_study, noise_study
from rhel.physics.train import oscillator_task


def test_gradient_error_grows_with_damping():
    """Paper App. A.3.1: RHEL is exact only without dissipation. Measured (T=10, K=200, eps=1e-3): relative
    error 2.1e-6 at gamma=0, then 5.0e-3, 5.1e-2, 0.68 at gamma = 1e-3, 1e-2, 0.1 (anti-damped echo; the
    physical, still-dissipating echo: 7.6e-3, 7.1e-2, 0.46)."""
    task = oscillator_task(T=10.0, n_steps=200)
    res = damping_study((0.0, 1e-3, 1e-2, 1e-1), task=task, echo_modes=("reversed", "physical"))
    for mode in ("reversed", "physical"):
        err = res[mode]["rel_error"]
        assert err[0] < 1e-5
        assert np.all(np.diff(err) > 0)
        assert err[1] > 100 * err[0]
        assert err[3] > 0.05
    # Roughly linear in gamma for small gamma (first-order effect of the wrong-sign dissipative term).
    slope = np.log10(res["reversed"]["rel_error"][2] / res["reversed"]["rel_error"][1])
    assert 0.8 < slope < 1.2


def test_noise_and_drift_degrade_cosine():
    """Read-out noise sigma and parameter drift delta enter divided by eps. Measured (T=10, K=200):
    at eps=1e-2, cosine 1 - 2e-8 (read-out) and 1 - 3.5e-6 (drift) at level 1e-6; -0.11 and 0.06 at 1e-1."""
    task = oscillator_task(T=10.0, n_steps=200)
    res = noise_study((1e-6, 1e-1), task=task, epsilon_values=(1e-2,), repeats=3)
    for kind in ("readout", "drift"):
        mean = res[kind]["mean"][0]
        assert mean[0] > 0.999
        assert mean[1] < 0.9
