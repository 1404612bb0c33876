r"""Physical systems defined by their energy.

A system is a Hamiltonian :math:`H(\phi, \pi; \theta, u)` over positions :math:`\phi \in \mathbb{R}^n` and
momenta :math:`\pi \in \mathbb{R}^n`, with trainable physical parameters :math:`\theta` (any pytree of arrays)
and a driving input :math:`u(t)`; plus an instantaneous loss :math:`\ell(\phi, y)` of the positions against a
target sample :math:`y(t)`. The dynamics are Hamilton's equations (paper Eq. 1), optionally with linear
friction :math:`\gamma`:

.. math::
    \partial_t \phi = \nabla_\pi H, \qquad \partial_t \pi = -\nabla_\phi H - \gamma \nabla_\pi H .

The energy is the library's one :class:`rhel.energies.Energy`: *separable*, ``kinetic(pi, theta)`` and
``potential(phi, theta, u)`` (integrated with the leapfrog), or one function ``hamiltonian(phi, pi, theta, u)``
(integrated with the implicit midpoint rule).

RHEL needs time-reversal invariance, :math:`H(\phi, \pi) = H(\phi, -\pi)` (paper Def. A.1);
:func:`rhel.check_time_reversal` tests it at random states and raises :class:`rhel.ContractError` naming the
property when it fails. The loss depends on positions only, so it is time-reversal invariant by construction.

The factories build the systems used in the docs, tests and demos:

* :func:`six_oscillators` -- the paper's toy (Eq. 8): coupled harmonic oscillators, input force on oscillator
  1, oscillator 4 tracks a target.
* :func:`fput_chain` -- a Fermi-Pasta-Ulam-Tsingou beta chain (nonlinear springs) between fixed walls.
* :func:`soft_oscillators` -- a non-separable system (position-dependent inverse mass), for the implicit
  midpoint rule.
* :func:`magnetic_particle` -- a charged particle in a magnetic field: *not* time-reversal invariant (bad
  input).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from rhel.energies import Energy

__all__ = [
    "PhysicsError",
    "HamiltonianSystem",
    "six_oscillators",
    "coupling_pairs",
    "random_oscillator_params",
    "oscillator_physical",
    "fput_chain",
    "random_fput_params",
    "soft_oscillators",
    "magnetic_particle",
    "squared_error_loss",
]


class PhysicsError(ValueError):
    """A run the physics module cannot carry out: an unstable time step or a non-finite (NaN/Inf) state. The
    message names the step and what to change. (An energy that breaks RHEL's contract raises
    :class:`rhel.ContractError`.)"""


class HamiltonianSystem(eqx.Module):
    r"""A physical system: an :class:`rhel.energies.Energy` in physical units plus an instantaneous loss (all fields
    static: the system is a description, never trained).

    **Arguments:**

    - ``energy``: the Hamiltonian, separable ``Energy(kinetic=T(pi, theta), potential=V(phi, theta, u))``
      (integrated by the leapfrog) or ``Energy(hamiltonian=H(phi, pi, theta, u))`` (implicit midpoint).
    - ``loss``: :math:`\ell(\phi, y)`, the instantaneous loss of the positions against one target sample.
    - ``n_dof``: number of positions (= number of momenta).
    - ``name``: a label for messages and figures.
    """

    energy: Energy = eqx.field(static=True)
    loss: Callable[[Array, Array], Array] = eqx.field(static=True)
    n_dof: int = eqx.field(static=True)
    name: str = eqx.field(static=True, default="system")


def squared_error_loss(index: int) -> Callable[[Array, Array], Array]:
    r""":math:`\ell(\phi, y) = \tfrac12 (\phi_{index} - y)^2`."""

    def loss(phi, y):
        return 0.5 * jnp.sum((phi[index] - y) ** 2)

    return loss


# ------------------------------------------------------------------------------------------------------------
# The paper's toy: six coupled harmonic oscillators (Eq. 8)
# ------------------------------------------------------------------------------------------------------------


@cache
def six_oscillators(n: int = 6, *, input_index: int = 0, output_index: int = 3, log_params: bool = True):
    r"""The paper's toy model (Eq. 8), ``n`` (default 6) all-to-all coupled harmonic oscillators:

    .. math::
        H = \sum_i \frac{\pi_i^2}{2 m_i} + \frac12 \sum_i k_i \phi_i^2
            + \frac12 \sum_{i<j} k_{ij} (\phi_j - \phi_i)^2 + u\, \phi_{\text{in}} ,

    so :math:`u(t)` is a force :math:`-u` on oscillator ``input_index`` (oscillator 1), and the loss is
    :math:`\ell = \tfrac12(\phi_{\text{out}} - y)^2` on oscillator ``output_index`` (oscillator 4).

    Parameters ``theta = {"m": (n,), "k": (n,), "kc": (n(n-1)/2,)}``, couplings ordered as
    ``np.triu_indices(n, 1)`` (pairs i<j). With ``log_params`` (default) the entries are the *logarithms* of
    the physical values (positive by construction, better conditioned for Adam); :func:`oscillator_physical`
    converts.
    """
    iu, ju = np.triu_indices(n, 1)
    tr = jnp.exp if log_params else (lambda x: x)

    def kinetic(pi, theta):
        return 0.5 * jnp.sum(pi**2 / tr(theta["m"]))

    def potential(phi, theta, u):
        d = phi[ju] - phi[iu]
        return 0.5 * jnp.sum(tr(theta["k"]) * phi**2) + 0.5 * jnp.sum(tr(theta["kc"]) * d**2) + u * phi[input_index]

    return HamiltonianSystem(
        Energy(kinetic=kinetic, potential=potential),
        squared_error_loss(output_index),
        n,
        name=f"{n} coupled oscillators",
    )


def coupling_pairs(n: int = 6) -> list[tuple[int, int]]:
    """The (i, j), i<j, 0-based, in the order of ``theta["kc"]``."""
    return [(int(i), int(j)) for i, j in zip(*np.triu_indices(n, 1), strict=True)]


def random_oscillator_params(seed: int, n: int = 6, *, log_params: bool = True) -> dict[str, Array]:
    """Random physical parameters: masses and on-site springs in [0.5, 2], couplings in [0.05, 0.5]
    (seeded)."""
    rng = np.random.default_rng(seed)
    p = {
        "m": rng.uniform(0.5, 2.0, n),
        "k": rng.uniform(0.5, 2.0, n),
        "kc": rng.uniform(0.05, 0.5, n * (n - 1) // 2),
    }
    return {key: jnp.asarray(np.log(v) if log_params else v) for key, v in p.items()}


def oscillator_physical(theta: dict[str, Array], *, log_params: bool = True) -> dict[str, Array]:
    """Physical values (masses, springs, couplings) of oscillator or FPUT parameters."""
    return {k: jnp.exp(v) for k, v in theta.items()} if log_params else dict(theta)


# ------------------------------------------------------------------------------------------------------------
# Nonlinear: Fermi-Pasta-Ulam-Tsingou beta chain
# ------------------------------------------------------------------------------------------------------------


@cache
def fput_chain(n: int = 4, *, output_index: int | None = None):
    r"""An FPUT-:math:`\beta` chain of ``n`` unit masses between fixed walls (``n + 1`` nonlinear springs):

    .. math::
        H = \sum_i \frac{\pi_i^2}{2} + \sum_{b=0}^{n} \Big(\frac{k_b}{2} d_b^2 + \frac{\beta_b}{4} d_b^4\Big)
            + u\,\phi_1, \qquad d = (\phi_1, \phi_2 - \phi_1, \dots, \phi_n - \phi_{n-1}, -\phi_n).

    Input force on the first mass; loss :math:`\tfrac12(\phi_{out} - y)^2` on the last (default) mass.
    Parameters ``{"k": (n+1,), "beta": (n+1,)}`` as logarithms (positive springs and quartic stiffnesses).
    """
    out = n - 1 if output_index is None else output_index

    def kinetic(pi, theta):
        return 0.5 * jnp.sum(pi**2)

    def potential(phi, theta, u):
        d = jnp.diff(jnp.concatenate([jnp.zeros(1), phi, jnp.zeros(1)]))
        k, beta = jnp.exp(theta["k"]), jnp.exp(theta["beta"])
        return jnp.sum(0.5 * k * d**2 + 0.25 * beta * d**4) + u * phi[0]

    return HamiltonianSystem(
        Energy(kinetic=kinetic, potential=potential), squared_error_loss(out), n, name=f"FPUT chain (n={n})"
    )


def random_fput_params(seed: int, n: int = 4) -> dict[str, Array]:
    """Random log-parameters for :func:`fput_chain`: springs in [0.5, 1.5], quartic stiffnesses in [0.5,
    2]."""
    rng = np.random.default_rng(seed)
    return {
        "k": jnp.asarray(np.log(rng.uniform(0.5, 1.5, n + 1))),
        "beta": jnp.asarray(np.log(rng.uniform(0.5, 2.0, n + 1))),
    }


# ------------------------------------------------------------------------------------------------------------
# Non-separable (implicit midpoint) and a bad input
# ------------------------------------------------------------------------------------------------------------


@cache
def soft_oscillators(n: int = 3):
    r"""A non-separable, time-reversal-invariant chain: inverse masses that soften with displacement,

    .. math::
        H = \sum_i \frac{(1 + a_i \phi_i^2)\,\pi_i^2}{2 m_i} + \frac12\sum_i k_i \phi_i^2
            + \frac12 \sum_i c_i (\phi_{i+1} - \phi_i)^2 + u\,\phi_1 .

    Parameters ``{"m", "k": (n,), "c": (n-1,), "a": (n,)}``; ``m, k, c`` as logarithms, ``a`` raw. Loss on the
    last oscillator. Needs :class:`~rhel.integrators.ImplicitMidpoint` (the leapfrog is for separable
    energies).
    """

    def energy(phi, pi, theta, u):
        m, k, c = jnp.exp(theta["m"]), jnp.exp(theta["k"]), jnp.exp(theta["c"])
        kin = jnp.sum((1.0 + theta["a"] * phi**2) * pi**2 / (2 * m))
        return kin + 0.5 * jnp.sum(k * phi**2) + 0.5 * jnp.sum(c * jnp.diff(phi) ** 2) + u * phi[0]

    return HamiltonianSystem(Energy(hamiltonian=energy), squared_error_loss(n - 1), n, name=f"soft oscillators (n={n})")


@cache
def magnetic_particle(field: float = 1.0):
    r"""A charged particle in a uniform magnetic field, :math:`H = |\pi - A(\phi)|^2/2 + \tfrac12|\phi|^2`,
    :math:`A = \tfrac{B}{2}(-\phi_2, \phi_1)`. Not time-reversal invariant (the field breaks the symmetry): a
    test case for the :class:`rhel.ContractError` RHEL must raise. ``theta = {"k": ()}`` scales the trap."""

    def energy(phi, pi, theta, u):
        a = 0.5 * field * jnp.array([-phi[1], phi[0]])
        return 0.5 * jnp.sum((pi - a) ** 2) + 0.5 * theta["k"] * jnp.sum(phi**2) + u * phi[0]

    return HamiltonianSystem(Energy(hamiltonian=energy), squared_error_loss(1), 2, name="charged particle in B field")
