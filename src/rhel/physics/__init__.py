"""Continuous-time physics: systems defined by their energy, trained with Hamiltonian echoes (paper §1, Eq.
1-8).

* :mod:`~rhel.physics.systems` -- :class:`HamiltonianSystem` (energy + loss), the paper's six oscillators, an
  FPUT chain, a non-separable system; :class:`PhysicsError` and the time-reversal check.
* :mod:`~rhel.physics.integrators` -- reversible symplectic integrators (leapfrog, implicit midpoint).
* :mod:`~rhel.physics.echo` -- continuous RHEL (:func:`rhel_gradient`), autodiff reference, recording helpers.
* :mod:`~rhel.physics.adjoint` -- the continuous adjoint state method (Eq. 4-5), RK4.
* :mod:`~rhel.physics.train` -- training physical parameters with RHEL or BPTT (optax Adam).
* :mod:`~rhel.physics.studies` -- what breaks RHEL: damping, device noise.
* :mod:`~rhel.physics.demo`, :mod:`~rhel.physics.cli` -- ``rhel demo oscillators | fput | damping | noise``.
"""

from rhel.physics.adjoint import adjoint_gradient
from rhel.physics.echo import (
    EchoNoise,
    autodiff_gradient,
    check_energy_drift,
    echo_trajectory,
    forward_loss,
    midpoint_times,
    rhel_gradient,
    sample_signal,
    simulate,
)
from rhel.physics.integrators import ImplicitMidpoint, Integrator, Leapfrog, default_integrator
from rhel.physics.systems import (
    HamiltonianSystem,
    PhysicsError,
    check_time_reversal,
    coupling_pairs,
    fput_chain,
    magnetic_particle,
    oscillator_physical,
    random_fput_params,
    random_oscillator_params,
    six_oscillators,
    soft_oscillators,
)

__all__ = [
    "EchoNoise",
    "HamiltonianSystem",
    "ImplicitMidpoint",
    "Integrator",
    "Leapfrog",
    "PhysicsError",
    "adjoint_gradient",
    "autodiff_gradient",
    "check_energy_drift",
    "check_time_reversal",
    "coupling_pairs",
    "default_integrator",
    "echo_trajectory",
    "forward_loss",
    "fput_chain",
    "magnetic_particle",
    "midpoint_times",
    "oscillator_physical",
    "random_fput_params",
    "random_oscillator_params",
    "rhel_gradient",
    "sample_signal",
    "simulate",
    "six_oscillators",
    "soft_oscillators",
]
