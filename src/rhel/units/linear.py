"""The linear HRU (paper Eq. 17): the LinOSS oscillator in leapfrog form."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from rhel._custom_types import Params
from rhel.energies import Energy
from rhel.gradients._core import resolve_scan
from rhel.units.base import AbstractHRU, check_sizes


def _kinetic(p: Array, theta: Params) -> Array:
    return 0.5 * jnp.sum(theta["step"] * p**2)


def _potential(q: Array, theta: Params, f: Array) -> Array:
    return jnp.sum(theta["step"] * (0.5 * theta["A"] * q**2 - q * f))


def _linear_coefficients(theta: Params) -> tuple[Array, Array]:
    """The leapfrog map of the energy above on ``(p, q)``, per channel, and its forcing (see module docstring)."""
    s, a = theta["step"], theta["A"]
    s2a = s**2 * a
    m = jnp.stack([jnp.stack([1 - 0.5 * s2a, -s * a], -1), jnp.stack([s * (1 - 0.25 * s2a), 1 - 0.5 * s2a], -1)], -2)
    force = jnp.stack([s, 0.5 * s**2], -1)
    return m, force


LINEAR_ENERGY = Energy(_kinetic, _potential, linear_coefficients=_linear_coefficients)


class LinearHRU(AbstractHRU):
    r"""Linear Hamiltonian recurrent unit: independent oscillators driven by a linear map of the input.

    Energy per channel (``s`` the per-channel time step, folded into the energy; leapfrog with unit step):

        H = 1/2 sum s p^2 + 1/2 sum s A q^2 - sum s q (B u)

    so one step is ``q_h = q + s p / 2``, ``p' = p - s (A q_h - B u)``, ``q' = q_h + s p' / 2`` (LinOSS's oscillator
    integrated by leapfrog, which, unlike LinOSS-IMEX, is reversible by a momentum flip). The output is
    ``Re(C q) + D * u``.

    Parameterisation (as the official code): ``A = relu(A_hat)``, ``A_hat ~ U[0, 1]``; ``s = sigmoid(s_hat)``,
    ``s_hat ~ U[0, 1]`` (trainable if ``train_step``); ``B`` of shape ``(P, in)`` and ``C`` of shape ``(out, P)``,
    complex if ``complex_state`` (real and imaginary parts ``~ U[-1/sqrt(fan_in), 1/sqrt(fan_in)]``); ``D ~ N(0, 1)``
    when ``out_size == in_size``. A complex state is held as its real and imaginary parts, two real oscillator banks
    sharing ``A`` and ``s``: all arithmetic is real.

    **Arguments:** ``in_size``, ``state_size`` (P oscillators), ``out_size`` (default ``in_size``),
    ``complex_state``, ``train_step``, ``scan`` (``"auto"``: parallel associative scan on accelerators, sequential on
    CPU; both compute the same map), ``key``.
    """

    a_hat: Float[Array, " P"]
    step_hat: Float[Array, " P"]
    b_re: Float[Array, "P i"]
    b_im: Float[Array, "P i"] | None
    c_re: Float[Array, "o P"]
    c_im: Float[Array, "o P"] | None
    d: Float[Array, " i"] | None
    complex_state: bool = eqx.field(static=True)
    train_step: bool = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        state_size: int,
        out_size: int | None = None,
        *,
        complex_state: bool = True,
        train_step: bool = True,
        scan: str = "auto",
        dtype: Any = None,
        key: PRNGKeyArray,
    ):
        out_size = in_size if out_size is None else out_size
        check_sizes("LinearHRU", in_size=in_size, state_size=state_size, out_size=out_size)
        dtype = jnp.result_type(float) if dtype is None else dtype
        k = jax.random.split(key, 7)
        p, h, o = state_size, in_size, out_size

        def unif(k, shape, bound):
            return jax.random.uniform(k, shape, dtype, -bound, bound)

        self.in_size, self.out_size = in_size, out_size
        self.energy, self.scan = LINEAR_ENERGY, scan
        resolve_scan(scan)  # validates the choice
        self.complex_state, self.train_step = complex_state, train_step
        self.a_hat = jax.random.uniform(k[0], (p,), dtype)
        self.step_hat = jax.random.uniform(k[1], (p,), dtype)
        self.b_re = unif(k[2], (p, h), h**-0.5)
        self.b_im = unif(k[3], (p, h), h**-0.5) if complex_state else None
        self.c_re = unif(k[4], (o, p), p**-0.5)
        self.c_im = unif(k[5], (o, p), p**-0.5) if complex_state else None
        self.d = jax.random.normal(k[6], (h,), dtype) if o == h else None

    @property
    def state_size(self) -> int:
        return self.a_hat.shape[0] * (2 if self.complex_state else 1)

    def energy_params(self) -> dict[str, Array]:
        a = jax.nn.relu(self.a_hat)
        s = jax.nn.sigmoid(self.step_hat)
        if not self.train_step:
            s = jax.lax.stop_gradient(s)
        if self.complex_state:
            a, s = jnp.concatenate([a, a]), jnp.concatenate([s, s])
        return {"A": a, "step": s}

    def drive_matrix(self) -> Array:
        return jnp.concatenate([self.b_re, self.b_im]) if self.complex_state else self.b_re

    def readout_matrix(self) -> Array:
        # Re(C q) with q = q_re + i q_im: C_re q_re - C_im q_im
        return jnp.concatenate([self.c_re, -self.c_im], axis=1) if self.complex_state else self.c_re

    def skip(self, u: Array) -> Array | float:
        return 0.0 if self.d is None else self.d * u
