"""Run-time checks that keep the gradient methods from being silently wrong.

* :func:`guard_cotangent`: an identity on a unit's outputs whose VJP raises when the loss gradient reaching the unit
  is non-finite (NaN/Inf in the targets or the loss), whatever the gradient method.
* :func:`check_epsilon`: a :class:`EpsilonWarning` when RHEL's relative nudge lies outside the range where its
  estimator is accurate (:func:`accurate_epsilon_range`).
* :func:`echo_return_check`: RHEL's echoes end near the momentum-flipped initial state; a return error above
  :data:`RETURN_TOLERANCE` means the energy is not time-reversal invariant at the current parameters (or not smooth),
  so the gradient is wrong: raise (``check="raise"``), warn (``"warn"``) or do nothing (``"off"``); for the
  symmetric estimators the same for echoes that left their linear regime (:data:`LINEARITY_TOLERANCE`).

All checks are per sequence, outside the scans' loop bodies, and ride on a scalar (:func:`raise_if`): none copies a
sequence.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from rhel.energies import ContractWarning

CHECK_MODES = ("raise", "warn", "off")

#: Largest accepted return error of the echoes, ``max |mean echo end - (q0, -p0)| / (1 + max |state|)``, per dtype
#: (other dtypes: the float32 value). Measured (benchmarks/unit_agreement.py, L = 256, and nonlinear
#: HRUs up to L = 2000 at step 0.1): a time-reversal-invariant energy returns to 1e-15 (linear) .. 2e-7 (nonlinear,
#: quartic) in float64 and to 1e-6 .. 8e-2 in float32 (chaotic energies amplify rounding: use ``resync_every``); the
#: kinetic energy 1/2 |p - a|^2 misses by about |a| (0.44 at a = 0.5, 0.056 at a = 0.05).
RETURN_TOLERANCE: dict[str, float] = {"float64": 1e-4, "float32": 0.2}


class EpsilonWarning(UserWarning):
    """RHEL's nudge is outside the range where its finite-difference estimator is accurate."""


def accurate_epsilon_range(dtype: Any, *, exact_for_any: bool = False) -> tuple[float, float]:
    """``(low, high)``: the relative nudges (state units) for which RHEL's estimators are accurate in ``dtype``.

    Below ``100 * machine_eps`` (float64 2.2e-14, float32 1.2e-5) the nudge drowns in rounding (at worst the gradient
    underflows to zero); above ``1`` the nudge is as large as the state and the estimator's bias dominates. With
    ``exact_for_any`` (a symmetric estimator on a quadratic energy, a linear HRU) there is no upper bound.
    """
    low = 100.0 * float(jnp.finfo(dtype).eps)
    return low, (math.inf if exact_for_any else 1.0)


def check_epsilon(epsilon: Any, dtype: Any, *, exact_for_any: bool) -> None:
    """Warn (:class:`EpsilonWarning`) if a concrete relative ``epsilon`` is outside :func:`accurate_epsilon_range`."""
    if isinstance(epsilon, jax.core.Tracer):
        return
    eps = float(epsilon)
    low, high = accurate_epsilon_range(dtype, exact_for_any=exact_for_any)
    if not low <= eps <= high:
        side = "the gradient drowns in rounding or underflows" if eps < low else "the estimator's bias dominates"
        warnings.warn(
            f"RHEL epsilon={eps:g} is outside the accurate range [{low:.2g}, {high:g}] for {jnp.dtype(dtype).name} "
            f"({side}); use the default (epsilon=None) or a value inside the range",
            EpsilonWarning,
            stacklevel=4,
        )


def all_finite(x: Array) -> Array:
    """``jnp.all(jnp.isfinite(x))`` as one reduction: ``isfinite(max |x|)`` (the maximum propagates NaN). XLA fuses the
    absolute value into the reduction, where it would materialise ``isfinite(x)`` as a boolean sequence first."""
    return jnp.isfinite(jnp.max(jnp.abs(x), initial=0))


def tree_all_finite(tree: Any) -> Array:
    """Whether every entry of every array leaf of ``tree`` is finite (:func:`all_finite` per leaf)."""
    return jnp.all(jnp.asarray([all_finite(g) for g in jax.tree_util.tree_leaves(tree)]))


def raise_if(tree: Any, bad: Array, msg: str) -> Any:
    """``tree`` itself; raises ``msg`` (also under ``jit``/``vmap``, as ``eqx.error_if``) where ``bad`` is true.

    The error rides on a scalar one that every floating-point leaf is divided by (exact: ``x / 1 == x``, NaN stays
    NaN; other leaves pass unchecked), with no gradient. ``eqx.error_if`` on the leaves themselves would route them
    through a conditional, which XLA materialises as a copy of each, and reverse mode as a copy of each cotangent: a
    whole sequence per check. A division rather than a multiplication: XLA counts it as expensive, so it computes the
    checked leaf once instead of recomputing it inside each consumer (which keeps the unchecked leaf alive as long as
    the last of them).
    """
    one = jax.lax.stop_gradient(eqx.error_if(jnp.ones(()), bad, msg))
    return jax.tree_util.tree_map(lambda x: x / one.astype(x.dtype) if eqx.is_inexact_array(x) else x, tree)


def _cotangent_identity(what: str, y: Array) -> Array:
    del what
    return y


_cotangent_identity = jax.custom_vjp(_cotangent_identity, nondiff_argnums=(0,))


def _identity_fwd(what, y):
    return y, None


def _identity_bwd(what, _, ybar):
    msg = (
        f"the loss gradient w.r.t. the outputs of {what} is non-finite (NaN/Inf in the targets or the loss); "
        "check the targets (and their mask) and the loss"
    )
    return (raise_if(ybar, ~all_finite(ybar), msg),)


_cotangent_identity.defvjp(_identity_fwd, _identity_bwd)


def guard_cotangent(y: Array, what: str) -> Array:
    """``y`` itself; reverse mode raises (also under ``jit``) if the cotangent reaching ``y`` is not finite."""
    return _cotangent_identity(what, y)


def echo_return_error(mean_q: Array, mean_p: Array, q: Array, p: Array, size: Array) -> Array:
    """``max |mean_q - q|, |mean_p + p|`` over ``size``: how far the echoes' mean is from the flipped state."""
    return jnp.maximum(jnp.max(jnp.abs(mean_q - q)), jnp.max(jnp.abs(mean_p + p))) / size


#: Largest accepted ratio of the echoes' return error to their spread (symmetric estimators, see
#: :func:`echo_return_check`). Measured (ratio -> the gradient's error against BPTT): the strongly nonlinear user
#: energy of tests/test_gradients.py in float64 at eps 0.005 / 0.01 / 0.03 / 0.1: < 0.2 / 0.22 / 0.64 / 1.19 ->
#: worst leaf 6.2e-3 / 2.5e-2 / 0.22 / 2.0; ``rhel gradcheck --model nonlinear --length 4096`` in float32: 0.7-1.2
#: -> 0.24 (global); the same at 8,192 steps in float64 with ``--resync-every 32``: up to 0.44 -> 0.84.
LINEARITY_TOLERANCE = 0.3

_CHECKS = {
    "return": (
        "RHEL's echo did not return to the initial state (relative error{value} > {tol:g} in {name}): the energy is "
        "not time-reversal invariant at the current parameters (or not smooth), so the gradient {verb} wrong; fix "
        "the energy, use BPTT, or pass RHEL(check='warn'|'off')"
    ),
    "linearity": (
        "RHEL's echoes left their linear regime (their mean strayed from the forward pass by{value} > {tol:g} of "
        "their spread, in {name}): the difference quotient, hence the gradient, {verb} wrong; long or chaotic "
        "nonlinear dynamics amplify rounding (float32) and the nudge: re-synchronise the echo (RHEL(resync_every=64), "
        "gradient.resync_every), use float64 or BPTT, or pass RHEL(check='warn'|'off')"
    ),
}


def _warn(value, tol, kind, name):
    value = np.asarray(value)
    if np.any(value > tol):
        text = _CHECKS[kind].format(value=f" {float(np.max(value)):.3g}", tol=tol, name=name, verb="is")
        warnings.warn(text, ContractWarning, stacklevel=2)


def echo_return_check(grads: Any, err: Array, dtype: Any, mode: str, linearity: Array | None = None) -> Any:
    """``grads`` itself, after acting as ``mode`` (``raise``/``warn``/``off``) on the echoes' return error ``err``
    (against :data:`RETURN_TOLERANCE`) and, for a symmetric estimator, on ``linearity``: the raw return error over
    the echoes' spread where they end (against :data:`LINEARITY_TOLERANCE`). The echoes' mean retraces the forward
    pass up to O(spread^2) while their difference, which carries the gradient, is O(spread): a ratio near 1 means the
    difference quotient is no longer a derivative, whatever the energy (a chaotic or long nonlinear run in float32,
    too large an epsilon), which the return error alone, allowed O(spread^2), does not see.
    """
    if mode == "off":
        return grads
    name = jnp.dtype(dtype).name
    checks = [("return", err, RETURN_TOLERANCE.get(name, RETURN_TOLERANCE["float32"]))]
    if linearity is not None:
        checks.append(("linearity", linearity, LINEARITY_TOLERANCE))
    for kind, value, tol in checks:
        if mode == "warn":
            jax.debug.callback(_warn, value, tol, kind, name)
        else:
            text = _CHECKS[kind].format(value="", tol=tol, name=name, verb="would be")
            grads = raise_if(grads, jnp.isfinite(value) & (value > tol), f"ContractError: {text}")
    return grads
