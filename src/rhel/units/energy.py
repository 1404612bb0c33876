"""A Hamiltonian recurrent unit built from user-written energies."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from rhel._custom_types import Params
from rhel.energies import Energy, check_energy_signature, check_time_reversal
from rhel.units.base import AbstractHRU, check_sizes, initial_log_step, step_size


@dataclasses.dataclass(frozen=True)
class _Kinetic:
    fn: Callable[[Array, Params], Array]

    def __call__(self, p: Array, theta: Params) -> Array:
        return theta["step"] * self.fn(p, theta["params"])


@dataclasses.dataclass(frozen=True)
class _Potential:
    fn: Callable[[Array, Params, Array], Array]

    def __call__(self, q: Array, theta: Params, u: Array) -> Array:
        return theta["step"] * self.fn(q, theta["params"], u)


class EnergyHRU(AbstractHRU):
    r"""An HRU whose energy the user writes: ``H = kinetic(p, params) + potential(q, params, u)``.

    The library derives the dynamics (leapfrog, step ``step``), the echo and the learning rule; couplings may be
    arbitrary (dense matrices, nonlinear terms). Outputs are ``y_k = C q_k`` with a trainable read-out ``C``
    (``out_size x state_size``; pass ``readout=`` to set it).

    **The contract** (what makes RHEL's echo a gradient):

    - *separable*: the kinetic energy depends on the momenta ``p`` (and ``params``) only, the potential on the
      positions ``q``, ``params`` and the input ``u`` only — enforced by the two signatures;
    - *time-reversal invariant*: ``kinetic(-p) == kinetic(p)`` (even in ``p``). With it, one leapfrog step is undone by
      flipping the momenta, stepping with the same input, and flipping back;
    - smooth (twice differentiable) JAX functions of their arguments; ``params`` is a pytree of float arrays, all of
      it trainable. Arrays captured in a closure instead of passed in ``params`` get no gradient.

    ``check=True`` (default) verifies the contract at construction on random states and inputs: evenness of the
    kinetic energy and a forward -> momentum flip -> reversed replay round trip; a violation raises
    :class:`rhel.ContractError` naming the property (:func:`rhel.check_time_reversal`).
    """

    params: Params
    log_step: Array
    readout: Array
    train_step: bool = eqx.field(static=True)
    n_state: int = eqx.field(static=True)

    def __init__(
        self,
        kinetic: Callable,
        potential: Callable,
        params: Params,
        *,
        state_size: int,
        in_size: int,
        out_size: int | None = None,
        step: float = 0.1,
        train_step: bool = False,
        readout: Array | None = None,
        check: bool = True,
        dtype: Any = None,
        key: PRNGKeyArray,
    ):
        out_size = state_size if out_size is None else out_size
        check_sizes("EnergyHRU", in_size=in_size, state_size=state_size, out_size=out_size)
        dtype = jnp.result_type(float) if dtype is None else dtype
        kr, kc = jax.random.split(key)
        self.in_size, self.out_size, self.n_state = in_size, out_size, state_size
        self.energy = Energy(_Kinetic(kinetic), _Potential(potential))
        self.scan, self.train_step = "sequential", train_step
        self.params = params
        self.log_step = initial_log_step("EnergyHRU", step, dtype)
        if readout is None:
            bound = state_size**-0.5
            readout = jax.random.uniform(kr, (out_size, state_size), dtype, -bound, bound)
        readout = jnp.asarray(readout, dtype)
        if readout.shape != (out_size, state_size):
            raise ValueError(f"EnergyHRU readout must have shape ({out_size}, {state_size}), got {readout.shape}")
        self.readout = readout
        if check:
            check_time_reversal(self, key=kc)
        else:
            theta = self.energy_params()
            check_energy_signature(self.energy, theta, jnp.zeros((in_size,), dtype), state_size, label="EnergyHRU",
                                   signatures=self.energy_signatures)  # fmt: skip

    #: How error messages write the user's functions.
    energy_signatures = {"kinetic": "kinetic(p, params)", "potential": "potential(q, params, u)"}

    @property
    def state_size(self) -> int:
        return self.n_state

    def energy_params(self) -> dict[str, Params]:
        step = step_size(self.log_step, self.train_step)
        return {"params": self.params, "step": step}

    def drive_matrix(self) -> None:
        return None

    def readout_matrix(self) -> Array:
        return self.readout
