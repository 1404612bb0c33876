"""The Hamiltonian recurrent unit (HRU) interface shared by the linear, nonlinear and user-energy units."""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from rhel._custom_types import Params
from rhel.energies import Energy
from rhel.gradients._core import resolve_scan
from rhel.gradients.base import AbstractGradient
from rhel.gradients.bptt import BPTT
from rhel.gradients.numerics import all_finite, guard_cotangent, raise_if


def check_sizes(owner: str, **sizes: int) -> None:
    """Raise a ValueError naming the first size that is not a positive integer."""
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{owner} {name} must be a positive integer, got {v!r}")


def initial_log_step(owner: str, step: float, dtype: Any) -> Array:
    """``log(step)`` as a parameter, after checking that ``step`` is a positive finite number."""
    if isinstance(step, bool) or not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise ValueError(f"{owner} step must be a positive finite number, got {step!r}")
    return jnp.asarray(math.log(step), dtype)


def step_size(log_step: Array, trainable: bool) -> Array:
    """The step ``exp(log_step)``, frozen (no gradient) unless ``trainable``."""
    step = jnp.exp(log_step)
    return step if trainable else jax.lax.stop_gradient(step)


def check_finite(x: Array, what: str) -> Array:
    """``x`` itself; raises (also under ``jit``/``vmap``) if ``x`` holds NaN or Inf, naming ``what``. The one
    finiteness mechanism of the package (:func:`rhel.gradients.numerics.raise_if` on :func:`all_finite`): no copy of
    ``x``, so it serves parameters, states and sequences alike."""
    return raise_if(x, ~all_finite(x), f"{what} contains NaN or Inf")


class AbstractHRU(eqx.Module):
    """A leapfrog integrator of a separable, time-reversal-invariant energy, one step per input.

    Subclasses provide the static :class:`~rhel.energies.Energy` (``energy``, step size folded in) and, as arrays
    derived from their trainable parameters by ordinary (autodiff-able) functions, the energy parameters ``theta``,
    the drive matrix ``B`` (``f_k = B u_k``, or ``None`` for ``f_k = u_k``) and the read-out ``C``
    (``y_k = C q_k``), plus an optional skip term. Calling the unit on a sequence ``u`` of shape ``(L, in_size)``
    returns ``(L, out_size)``.
    """

    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)
    energy: Energy = eqx.field(static=True)
    scan: str = eqx.field(static=True)

    @property
    @abc.abstractmethod
    def state_size(self) -> int:
        """Number of position coordinates ``q`` (the same number of momenta ``p``)."""

    @abc.abstractmethod
    def energy_params(self) -> Params:
        """The energy's parameters ``theta`` (step size included)."""

    @abc.abstractmethod
    def drive_matrix(self) -> Array | None:
        """``B`` with ``f_k = B u_k``, or ``None``."""

    @abc.abstractmethod
    def readout_matrix(self) -> Float[Array, "o n"]:
        """``C`` with ``y_k = C q_k``."""

    def skip(self, u: Float[Array, "L i"]) -> Array | float:
        """A term added to the outputs (``D * u`` for the paper's units); differentiated by autodiff."""
        return 0.0

    def initial_state(self, dtype: Any) -> tuple[Array, Array]:
        n = self.state_size
        return jnp.zeros((n,), dtype), jnp.zeros((n,), dtype)

    def __call__(
        self,
        u: Float[Array, "L i"],
        *,
        gradient: AbstractGradient | None = None,
        state0: tuple[Array, Array] | None = None,
    ) -> Float[Array, "L o"]:
        """Run the unit over one sequence ``u`` of shape ``(L, in_size)``; ``vmap`` it for batches.

        ``gradient`` chooses how reverse-mode autodiff differentiates the unit (default :class:`~rhel.BPTT`); it
        never changes the outputs. ``state0`` is the initial ``(q, p)`` (default zeros).
        """
        gradient = BPTT() if gradient is None else gradient
        if not isinstance(gradient, AbstractGradient):
            raise TypeError(
                f"gradient must be a gradient-method object such as rhel.RHEL() or rhel.BPTT(), got {gradient!r}"
            )
        u = jnp.asarray(u)
        if u.ndim != 2 or u.shape[1] != self.in_size:
            raise ValueError(
                f"{type(self).__name__} expects one input sequence of shape (length, {self.in_size}), got shape "
                f"{tuple(u.shape)}; use jax.vmap over the batch axis"
            )
        if u.shape[0] == 0:
            raise ValueError(f"{type(self).__name__} got an empty input sequence (length 0)")
        if not jnp.issubdtype(u.dtype, jnp.floating):
            raise TypeError(f"{type(self).__name__} expects a floating-point input sequence, got dtype {u.dtype}")
        theta = self.energy_params()
        drive, readout = self.drive_matrix(), self.readout_matrix()
        theta = _check_tree(theta, f"{type(self).__name__} energy parameters")
        if drive is not None:
            drive = check_finite(drive.astype(u.dtype), f"{type(self).__name__} drive matrix B")
        readout = check_finite(readout.astype(u.dtype), f"{type(self).__name__} read-out matrix C")
        theta = _cast_tree(theta, u.dtype)
        q0, p0 = self.initial_state(u.dtype) if state0 is None else self._check_state0(state0, u.dtype)
        # the input's check rides on the initial state, which every gradient method reads: checked this way, the
        # sequence itself is not copied (see raise_if)
        q0 = raise_if(q0, ~all_finite(u), f"the input sequence of {type(self).__name__} contains NaN or Inf")
        ys = gradient.solve(self.energy, theta, drive, readout, u, q0, p0, scan=resolve_scan(self.scan))
        ys = raise_if(
            ys,
            ~all_finite(ys),
            f"the forward pass of {type(self).__name__} diverged (non-finite outputs): its step size `step` is "
            "unstable for these parameters and inputs; use a smaller step",
        )
        return guard_cotangent(ys + self.skip(u), type(self).__name__)

    def _check_state0(self, state0: Any, dtype: Any) -> tuple[Array, Array]:
        """``state0`` as two finite arrays of shape ``(state_size,)`` in ``dtype``; a one-line error otherwise."""
        name, n = type(self).__name__, self.state_size
        if not (isinstance(state0, (tuple, list)) and len(state0) == 2):
            raise TypeError(f"{name} state0 must be a pair (q0, p0) of arrays of shape ({n},), got {type(state0)}")
        q0, p0 = (jnp.asarray(x) for x in state0)
        if q0.shape != (n,) or p0.shape != (n,):
            raise ValueError(
                f"{name} state0 must be (q0, p0) of shape ({n},) each (one sequence; vmap for batches), got shapes "
                f"{tuple(q0.shape)} and {tuple(p0.shape)}"
            )
        q0 = check_finite(q0.astype(dtype), f"{name} state0 (q0)")
        return q0, check_finite(p0.astype(dtype), f"{name} state0 (p0)")


def _cast_tree(tree: Params, dtype: Any) -> Params:
    return jax.tree_util.tree_map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, tree)


def _check_tree(tree: Params, what: str) -> Params:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    leaves = [check_finite(x, what) if eqx.is_inexact_array(x) else x for x in leaves]
    return jax.tree_util.tree_unflatten(treedef, leaves)
