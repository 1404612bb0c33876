"""A Hamiltonian recurrent unit built from user-written energies, and the time-reversal contract check."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from rhel.gradients._core import HamiltonianCore
from rhel.integrators import leapfrog_step
from rhel.units.base import AbstractHRU, check_sizes, initial_log_step, step_size


class ContractError(ValueError):
    """An energy breaks the HRU contract (separable, time-reversal invariant): RHEL's echo would not be a gradient."""


@dataclasses.dataclass(frozen=True)
class _Kinetic:
    fn: Callable[[Array, Any], Array]

    def __call__(self, p: Array, theta: Any) -> Array:
        return theta["step"] * self.fn(p, theta["params"])


@dataclasses.dataclass(frozen=True)
class _Potential:
    fn: Callable[[Array, Any, Array], Array]

    def __call__(self, q: Array, theta: Any, u: Array) -> Array:
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
    :class:`ContractError` naming the property.
    """

    params: Any
    log_step: Array
    readout: Array
    train_step: bool = eqx.field(static=True)
    n_state: int = eqx.field(static=True)

    def __init__(
        self,
        kinetic: Callable,
        potential: Callable,
        params: Any,
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
        self.core = HamiltonianCore(_Kinetic(kinetic), _Potential(potential))
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

    @property
    def state_size(self) -> int:
        return self.n_state

    def energy_params(self) -> dict[str, Any]:
        step = step_size(self.log_step, self.train_step)
        return {"params": self.params, "step": step}

    def drive_matrix(self) -> None:
        return None

    def readout_matrix(self) -> Array:
        return self.readout


def check_time_reversal(
    unit: AbstractHRU, *, key: PRNGKeyArray, steps: int = 8, scale: float = 1.0, rtol: float | None = None
) -> float:
    """Check that ``unit``'s energy is time-reversal invariant; return the round-trip error.

    On random states and inputs (of size ``scale``): (1) the kinetic energy must be even in the momenta;
    (2) ``steps`` leapfrog steps forward, a momentum flip, the same inputs replayed in reverse and a final flip must
    return to the start. Raises :class:`ContractError` naming the violated property otherwise. ``rtol`` defaults to
    ``1e3 * machine epsilon`` of the parameters' dtype.
    """
    core, theta = unit.core, unit.energy_params()
    dtype = jax.tree_util.tree_leaves(theta)[0].dtype if jax.tree_util.tree_leaves(theta) else jnp.float32
    rtol = 1e3 * float(jnp.finfo(dtype).eps) if rtol is None else rtol
    n = unit.state_size
    kq, kp, ku = jax.random.split(key, 3)
    q0 = scale * jax.random.normal(kq, (n,), dtype)
    p0 = scale * jax.random.normal(kp, (n,), dtype)
    us = scale * jax.random.normal(ku, (steps, unit.in_size), dtype)
    drive = unit.drive_matrix()
    fs = us if drive is None else us @ drive.T.astype(dtype)

    t_plus, t_minus = core.kinetic(p0, theta), core.kinetic(-p0, theta)
    if not jnp.allclose(t_plus, t_minus, rtol=rtol, atol=rtol):
        raise ContractError(
            f"{type(unit).__name__}: the kinetic energy is not even in the momenta (T(p) = {float(t_plus):.6g} but "
            f"T(-p) = {float(t_minus):.6g}); the energy is not time-reversal invariant, so a momentum flip does not "
            "reverse the dynamics and RHEL's echoes carry no gradient. Make T depend on p through even terms only."
        )
    q, p = q0, p0
    for f in fs:
        q, p = leapfrog_step(core.kinetic, core.potential, q, p, theta, f)
    p = -p
    for f in fs[::-1]:
        q, p = leapfrog_step(core.kinetic, core.potential, q, p, theta, f)
    p = -p
    size = float(jnp.max(jnp.abs(jnp.concatenate([q0, p0]))))
    err = float(jnp.max(jnp.abs(jnp.concatenate([q - q0, p - p0])))) / max(size, 1e-30)
    if not math.isfinite(err) or err > rtol:
        raise ContractError(
            f"{type(unit).__name__}: forward -> momentum flip -> reversed replay does not come back (relative error "
            f"{err:.3g} > {rtol:.3g} after {steps} steps); the energy is not time-reversal invariant or not "
            "separable, so RHEL's echoes would not carry the gradient."
        )
    return err
