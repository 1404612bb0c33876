"""Continuous-time physics: systems defined by their energy, trained with Hamiltonian echoes (paper §1, Eq.
1-8).

The energies, integrators, estimators and echo are the library's own (:mod:`rhel.energies`,
:mod:`rhel.integrators`, :mod:`rhel.gradients.echo`); this package adds what is specific to continuous time:

* :mod:`~rhel.physics.systems` -- :class:`HamiltonianSystem` (an :class:`rhel.Energy` + a loss), the paper's six
  oscillators, an FPUT chain, a non-separable system; :class:`PhysicsError` (unstable step, non-finite state).
* :mod:`~rhel.physics.echo` -- continuous RHEL (:func:`rhel_gradient`, nudged by a force from the loss),
  autodiff reference, recording helpers.
* :mod:`~rhel.physics.adjoint` -- the continuous adjoint state method (Eq. 4-5), RK4, and its gradient object
  :class:`Adjoint`.
* :mod:`~rhel.physics.train` -- training physical parameters with ``rhel.RHEL()``, ``rhel.BPTT()`` or
  :class:`Adjoint` (optax Adam).
* :mod:`~rhel.physics.studies` -- what breaks RHEL: damping, device noise.
* :mod:`~rhel.physics.demo`, :mod:`~rhel.physics.cli` -- ``rhel demo oscillators | fput | damping | noise``.
"""

from rhel.integrators import AbstractIntegrator, ImplicitMidpoint, Leapfrog, default_integrator
from rhel.physics.adjoint import Adjoint, Interpolated, adjoint_gradient
from rhel.physics.echo import (
    DEFAULT_EPSILON,
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
from rhel.physics.systems import (
    HamiltonianSystem,
    PhysicsError,
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
    "DEFAULT_EPSILON",
    "AbstractIntegrator",
    "Adjoint",
    "EchoNoise",
    "HamiltonianSystem",
    "ImplicitMidpoint",
    "Interpolated",
    "Leapfrog",
    "PhysicsError",
    "adjoint_gradient",
    "autodiff_gradient",
    "check_energy_drift",
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
