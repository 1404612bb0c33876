"""The nonlinear HRU (paper Eq. 18): UnICORNN-style oscillators with a log-cosh coupling to the input."""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from rhel._custom_types import Params
from rhel.energies import Energy
from rhel.units.base import AbstractHRU, check_sizes, initial_log_step, step_size


def log_cosh(x: Array) -> Array:
    """``log(cosh(x))`` without overflow (its derivative is ``tanh(x)``)."""
    return x + jax.nn.softplus(-2.0 * x) - math.log(2.0)


def _kinetic(p: Array, theta: Params) -> Array:
    return 0.5 * theta["step"] * jnp.sum(p**2)


def _potential(q: Array, theta: Params, f: Array) -> Array:
    w = theta["W"]
    coupling = jnp.sum(theta["c"] * log_cosh(w * q + f + theta["b"]) / w)
    return theta["step"] * (0.5 * theta["alpha"] * jnp.sum(q**2) + coupling)


NONLINEAR_ENERGY = Energy(_kinetic, _potential)


class NonlinearHRU(AbstractHRU):
    r"""Nonlinear Hamiltonian recurrent unit (paper Eq. 18, UnICORNN-style).

        H = delta * [ 1/2 |p|^2 + alpha/2 |q|^2 + sum_i c_i log cosh(W_i q_i + (B u)_i + b_i) / W_i ]

    with ``W`` diagonal, so the force is ``-delta (alpha q + c * tanh(W q + B u + b))``. Output ``C q + D * u``.

    Every parameter is trainable under every gradient method, the step ``delta`` included (the official code
    freezes it under RHEL only): ``W ~ U[0.5, 1]``, ``b = 0``, ``c = sigmoid(c_hat)`` with ``c_hat ~ U[-1, 1]``
    (the official code squashes twice, ``sigmoid(sigmoid(c_hat))``; once is enough to keep ``c`` in (0, 1)),
    ``alpha ~ U[0.1, 1]`` (scalar), ``delta = exp(log_step)`` (initial value ``step``), ``B ~ U[+-1/sqrt(in)]``,
    ``C ~ U[+-1/sqrt(P)]``, ``D ~ N(0, 1)`` when ``out_size == in_size``. Keep ``W`` away from zero (it divides).
    """

    w: Float[Array, " P"]
    b: Float[Array, " P"]
    c_hat: Float[Array, " P"]
    alpha: Float[Array, ""]
    log_step: Float[Array, ""]
    b_in: Float[Array, "P i"]
    c_out: Float[Array, "o P"]
    d: Float[Array, " i"] | None
    train_step: bool = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        state_size: int,
        out_size: int | None = None,
        *,
        step: float = 0.1,
        train_step: bool = True,
        dtype: Any = None,
        key: PRNGKeyArray,
    ):
        out_size = in_size if out_size is None else out_size
        check_sizes("NonlinearHRU", in_size=in_size, state_size=state_size, out_size=out_size)
        dtype = jnp.result_type(float) if dtype is None else dtype
        k = jax.random.split(key, 6)
        p, h, o = state_size, in_size, out_size
        self.in_size, self.out_size = in_size, out_size
        self.energy, self.scan, self.train_step = NONLINEAR_ENERGY, "sequential", train_step
        self.w = jax.random.uniform(k[0], (p,), dtype, 0.5, 1.0)
        self.b = jnp.zeros((p,), dtype)
        self.c_hat = jax.random.uniform(k[1], (p,), dtype, -1.0, 1.0)
        self.alpha = jax.random.uniform(k[2], (), dtype, 0.1, 1.0)
        self.log_step = initial_log_step("NonlinearHRU", step, dtype)
        self.b_in = jax.random.uniform(k[3], (p, h), dtype, -(h**-0.5), h**-0.5)
        self.c_out = jax.random.uniform(k[4], (o, p), dtype, -(p**-0.5), p**-0.5)
        self.d = jax.random.normal(k[5], (h,), dtype) if o == h else None

    @property
    def state_size(self) -> int:
        return self.w.shape[0]

    def energy_params(self) -> dict[str, Array]:
        step = step_size(self.log_step, self.train_step)
        return {"W": self.w, "b": self.b, "c": jax.nn.sigmoid(self.c_hat), "alpha": self.alpha, "step": step}

    def drive_matrix(self) -> Array:
        return self.b_in

    def readout_matrix(self) -> Array:
        return self.c_out

    def skip(self, u: Array) -> Array | float:
        return 0.0 if self.d is None else self.d * u
