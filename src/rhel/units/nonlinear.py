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


def _exp_minus_2_abs(x: Array) -> tuple[Array, Array]:
    a = jnp.abs(x)
    return a, jnp.exp(-2.0 * a)


@jax.custom_jvp
def log_cosh(x: Array) -> Array:
    """``log(cosh(x))`` without overflow, and its derivative ``tanh(x)``, from the one exponential ``exp(-2|x|)`` (a
    custom JVP: computed together, XLA evaluates the exponential once)."""
    a, e = _exp_minus_2_abs(x)
    return a + jnp.log1p(e) - math.log(2.0)


@jax.custom_jvp
def _tanh(x: Array) -> Array:
    """``tanh(x)`` from ``exp(-2|x|)``; its derivative ``1 - tanh(x)**2`` from the value (for BPTT's second pass)."""
    _, e = _exp_minus_2_abs(x)
    return jnp.sign(x) * (1.0 - e) / (1.0 + e)


@log_cosh.defjvp
def _log_cosh_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return log_cosh(x), _tanh(x) * dx


@_tanh.defjvp
def _tanh_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    t = _tanh(x)
    return t, (1.0 - t * t) * dx


def _kinetic(p: Array, theta: Params) -> Array:
    return jnp.sum(0.5 * theta["step"] * p**2)


def _potential(q: Array, theta: Params, f: Array) -> Array:
    w = theta["W"]
    return jnp.sum(theta["step"] * (0.5 * theta["alpha"] * q**2 + theta["c"] * log_cosh(w * q + f + theta["b"]) / w))


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
        # the shared alpha and step enter per oscillator: a rule accumulates their gradient per oscillator and sums it
        # once (through this broadcast), not with a reduction over the oscillators at every step of a loop
        n = self.w.shape
        alpha, step = jnp.broadcast_to(self.alpha, n), jnp.broadcast_to(step, n)
        return {"W": self.w, "b": self.b, "c": jax.nn.sigmoid(self.c_hat), "alpha": alpha, "step": step}

    def drive_matrix(self) -> Array:
        return self.b_in

    def readout_matrix(self) -> Array:
        return self.c_out

    def skip(self, u: Array) -> Array | float:
        return 0.0 if self.d is None else self.d * u
