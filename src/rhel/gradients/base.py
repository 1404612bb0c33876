"""The gradient-method interface: an object passed to a unit, like diffrax's ``adjoint=``."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array, Float

from rhel._custom_types import Params
from rhel.energies import Energy


class AbstractGradient(eqx.Module):
    """How a Hamiltonian recurrent unit is differentiated.

    The method never changes the forward result: ``unit(u, gradient=RHEL())`` and ``unit(u, gradient=BPTT())``
    return the same outputs; only reverse-mode derivatives (``jax.grad``, ``jax.vjp``) differ.
    """

    @abc.abstractmethod
    def solve(
        self,
        energy: Energy,
        theta: Params,
        drive: Array | None,
        readout: Float[Array, "o n"],
        us: Float[Array, "L i"],
        q0: Float[Array, " n"],
        p0: Float[Array, " n"],
        *,
        scan: str,
    ) -> Float[Array, "L o"]:
        """Outputs ``y_k = C q_k`` of the unit for the input sequence ``us`` (see :mod:`rhel.gradients._core`)."""
