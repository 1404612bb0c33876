"""Recurrent Hamiltonian Echo Learning (RHEL): the gradient read from two nudged echoes of the forward pass.

Algorithm 1 of Pourcel & Ernoult (NeurIPS 2025), as a custom VJP of the unit:

1. The forward pass runs the leapfrog integrator and keeps only the **final state** (the inputs are held by the
   caller anyway). No trajectory is stored.
2. The backward pass receives the output cotangent ``ybar_k`` (the loss gradient w.r.t. each output) and turns it
   into a nudge on the momenta, ``c_k = C^T ybar_k``.
3. Each echo starts from the momentum-flipped final state plus ``eps_e * c_L``, replays the drive in reverse and
   adds ``eps_e * c_{k-1}`` to the momentum after the step that reaches state ``k-1``. The echoes of an estimator
   (``+eps, -eps`` for the central one) run batched in one ``lax.scan``.
4. The parameter gradient is a finite difference, over the echoes, of the gradient of the half-step energy
   ``H_1/2`` (paper Eq. 14, the sub-steps ``k+1/3`` and ``k+2/3``) in ``theta``, accumulated in the scan carry; the
   gradient w.r.t. the drive ``f_k`` is the same difference of ``dH_1/2/df``, mapped through ``B`` block by block
   (one matrix product per block gives ``dL/dB`` and ``dL/du``); ``dL/dC`` uses the echoes' reconstruction of the
   forward states. Memory of the echo does not grow with the sequence length except for ``dL/du`` itself, which
   is written block by block over the cotangent ``ybar`` the echo has consumed.

Both passes run over blocks of steps in place (:func:`rhel.gradients._core.over_blocks`): they read ``u`` and
``ybar`` block by block where they lie and write their outputs block by block into one sequence, so that no copy of a
sequence is made (folded ``(blocks, chunk, ...)`` copies would be transposed under the batch ``vmap``).

In discrete time this equals BPTT as ``eps -> 0`` (Thm 3.2); for a linear HRU (quadratic energy) the central
estimator is exact for every ``eps``, up to floating-point rounding.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from rhel._custom_types import Params
from rhel.energies import Energy
from rhel.gradients._core import drive_sequence, forward, over_blocks
from rhel.gradients.base import AbstractGradient
from rhel.gradients.echo import (
    ESTIMATORS,
    Estimator,
    Nudge,
    difference_quotient,
    echo,
    get_estimator,
    initial_state_gradient,
    weighted,
)
from rhel.gradients.numerics import (
    CHECK_MODES,
    check_epsilon,
    echo_return_check,
    echo_return_error,
    raise_if,
    tree_all_finite,
)
from rhel.integrators import leapfrog_step

#: Default nudges (relative, in state units) measured with ``rhel gradcheck --eps-sweep`` on the nonlinear HSSM
#: (benchmarks/eps-sweep-nonlinear.png) and ``benchmarks/unit_agreement.py``: at each, the error against BPTT is within
#: a few times its minimum over eps, for the whole gradient and for its worst (smallest) parameter leaf.
MEASURED_EPSILON: dict[tuple[str, str], float] = {
    ("central", "float32"): 5e-3,
    ("one_sided", "float32"): 3e-4,
    ("richardson", "float32"): 1e-2,
    ("central", "float64"): 6e-6,
    ("one_sided", "float64"): 1.5e-8,
    ("richardson", "float64"): 1e-4,
}


def default_epsilon(estimator: str, dtype: Any, *, quadratic: bool = False) -> float:
    """The default nudging strength (relative to the cotangent's size, see :class:`RHEL`).

    For float32 and float64 the values measured by the eps sweep (:data:`MEASURED_EPSILON`): central 5e-3 / 6e-6,
    one-sided 3e-4 / 1.5e-8, Richardson 1e-2 / 1e-4. For other dtypes the textbook balance of truncation and
    rounding error, ``machine_eps ** (1 / (order + 1))``. For a quadratic energy (a linear HRU) the echoes are affine
    in ``eps``, so the symmetric estimators (central, Richardson) have no truncation error at all and ``eps = 1``
    minimises rounding.
    """
    est = get_estimator(estimator)
    if quadratic and est.symmetric:
        return 1.0
    measured = MEASURED_EPSILON.get((estimator, jnp.dtype(dtype).name))
    if measured is not None:
        return measured
    return float(jnp.finfo(dtype).eps) ** (1.0 / (est.order + 1))


class RHEL(AbstractGradient):
    """Recurrent Hamiltonian Echo Learning (Pourcel & Ernoult, NeurIPS 2025, Algorithm 1).

    **Arguments:**

    - ``epsilon``: the nudging strength (a number, or a scalar array to sweep it without recompiling). ``None``
      (default) picks a value that balances the estimator's bias against rounding in the computation's dtype
      (:func:`default_epsilon`, measured by an eps sweep): central 6e-6 in float64 and 5e-3 in float32; for linear
      HRUs, where the central and Richardson estimators are exact for every ``eps``, ``1.0``.
    - ``estimator``: ``"central"`` (3 passes, bias O(eps^2), the paper's), ``"one_sided"`` (2 passes: the forward
      pass is the eps = 0 echo, bias O(eps)) or ``"richardson"`` (5 passes, bias O(eps^4)).
    - ``relative``: how ``epsilon`` is scaled. With ``True`` (default) the nudge is ``epsilon * c / s`` where
      ``s = max|ybar| * max_j sum_i |C_ij|`` bounds the largest entry of the momentum nudge ``c = C^T ybar``: the
      nudge's largest entry is at most ``epsilon`` *in state units*, whatever the loss's scale (batch means, loss
      scaling and sequence length leave the echo unchanged). With ``False`` the nudge is ``epsilon * c`` (the paper's
      and the official code's convention, where a loss scale multiplies the effective nudge).
    - ``chunk``: the echo processes the sequence in blocks of this many steps (block-wise matrix products for the
      drive and read-out gradients); memory of the echo is ``O(chunk)`` besides the input gradient (written over
      the output cotangent when the unit's input and output sizes agree).
    - ``check``: what to do when the echoes do not return to the momentum-flipped initial state (the energy is not
      time-reversal invariant at the current parameters, so the gradient is wrong): ``"raise"`` (default, an
      error under ``jit`` whose message starts with ``ContractError``), ``"warn"`` (a
      :class:`rhel.ContractWarning`) or ``"off"``. Tolerances: :data:`rhel.gradients.numerics.RETURN_TOLERANCE`.
    - ``resync_every``: re-synchronise the echoes every ``K`` steps (for chaotic energies or long float32 runs). The
      forward pass stores its state every ``K`` steps (memory ``O(L / K)`` states) and, when the echoes reach a
      stored step, their mean is moved onto the stored (momentum-flipped) forward state while their differences,
      which carry the gradient, are kept. For a non-quadratic energy the differences are also *renormalised*
      there: where the dynamics have amplified them past the size of one nudge (out of the linear regime, for a
      long or chaotic run), they are scaled back to it and the scale is divided out of everything they contribute
      afterwards, so the echoes stay in their linear regime over any length. Symmetric estimators only (central,
      Richardson); the echo then runs in blocks of ``K`` steps (``chunk`` is ignored) and the forward pass uses the
      sequential scan.

    A concrete relative ``epsilon`` outside the accurate range of the computation's dtype
    (:func:`rhel.gradients.numerics.accurate_epsilon_range`: ``[100 machine_eps, 1]``, float64 ``[2.2e-14, 1]``,
    float32 ``[1.2e-5, 1]``, no upper bound for central/Richardson on linear HRUs) warns
    (:class:`rhel.EpsilonWarning`) when the unit is called.
    """

    epsilon: float | Array | None = None
    estimator: Literal["central", "one_sided", "richardson"] = eqx.field(default="central", static=True)
    relative: bool = eqx.field(default=True, static=True)
    chunk: int = eqx.field(default=256, static=True)
    check: Literal["raise", "warn", "off"] = eqx.field(default="raise", static=True)
    resync_every: int | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        get_estimator(self.estimator)
        eps = self.epsilon
        if eps is not None and not isinstance(eps, jax.core.Tracer):
            # a concrete number; a traced one (an epsilon swept under jit) is checked when the echo runs
            ok = not isinstance(eps, bool) and jnp.ndim(eps) == 0 and math.isfinite(float(eps)) and float(eps) > 0
            if not ok:
                raise ValueError(
                    f"RHEL epsilon must be a positive finite number (or None for the default), got {eps!r}"
                )
        if not isinstance(self.chunk, int) or self.chunk < 1:
            raise ValueError(f"RHEL chunk must be a positive integer, got {self.chunk!r}")
        if self.check not in CHECK_MODES:
            raise ValueError(f"RHEL check must be one of {CHECK_MODES}, got {self.check!r}")
        k = self.resync_every
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(f"RHEL resync_every must be a positive integer (or None), got {k!r}")
        if k is not None and not ESTIMATORS[self.estimator].symmetric:
            raise ValueError(
                f"RHEL resync_every needs a symmetric estimator ('central' or 'richardson'), got {self.estimator!r}"
            )

    def epsilon_for(self, dtype: Any, *, quadratic: bool = False) -> float | Array:
        """The nudging strength used for computations in ``dtype`` (``quadratic``: a linear HRU's energy)."""
        if self.epsilon is not None:
            return self.epsilon
        return default_epsilon(self.estimator, dtype, quadratic=quadratic)

    def solve(
        self,
        energy: Energy,
        theta: Params,
        drive: Array | None,
        readout: Array,
        us: Array,
        q0: Array,
        p0: Array,
        *,
        scan: str,
    ) -> Float[Array, "L o"]:
        quadratic = energy.linear_coefficients is not None
        est = ESTIMATORS[self.estimator]
        eps = self.epsilon_for(us.dtype, quadratic=quadratic)
        if self.relative and self.epsilon is not None:
            check_epsilon(eps, us.dtype, exact_for_any=quadratic and est.symmetric)
        chunk = self.chunk if self.resync_every is None else self.resync_every
        scan = scan if self.resync_every is None else "sequential"
        cfg = _EchoConfig(energy, est, self.relative, chunk, scan, self.check, self.resync_every is not None)
        return _rhel_solve(cfg, theta, drive, readout, us, q0, p0, jnp.asarray(eps, us.dtype))


@dataclasses.dataclass(frozen=True)
class _EchoConfig:
    energy: Energy
    estimator: Estimator
    relative: bool
    chunk: int
    scan: str
    check: str = "raise"
    resync: bool = False


def _zeros_like(tree):
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def _drive_vjp(drive: Array | None, u_block: Array, gf_block: Array) -> tuple[Array | None, Array]:
    """``(dL/dB, dL/du)`` of a block from ``dL/df``: one matrix product each (identity drive: ``dL/du = dL/df``)."""
    if drive is None:
        return None, gf_block
    return gf_block.T @ u_block, gf_block @ drive


def _add(a, b):
    return jax.tree_util.tree_map(jnp.add, a, b)


def _forward(cfg: _EchoConfig, theta, drive, readout, us, q0, p0, *, rule: bool = False, anchors: bool = False):
    """RHEL's forward pass, in blocks of ``cfg.chunk`` steps written in place (:func:`over_blocks`).

    Returns ``(ys, (qK, pK), rule_terms, anchors)``: the outputs ``(L, out)``, the final state and, on request,

    - ``rule``: the eps = 0 terms of the one-sided estimator, ``(sum_k dH_1/2/dtheta, dL/dB, dL/du)`` from
      ``dH_1/2/df`` (the last a sequence, written block by block like the outputs), else ``None``;
    - ``anchors``: the states ``(q, p)`` at the start of each block, shape ``(blocks, n)`` each (where the echo
      re-synchronises), else ``None``.

    A linear energy with ``cfg.scan == "parallel"`` runs the associative scan over the whole sequence instead (plain
    outputs only).
    """
    linear = cfg.energy.linear_coefficients is not None
    if cfg.scan == "parallel" and linear and not (rule or anchors):
        ys, state = forward(cfg.energy, theta, drive, readout, us, q0, p0, scan="parallel")
        return ys, state, None, None
    length = us.shape[0]
    chunk = min(cfg.chunk, length)
    n_blocks = -(-length // chunk)

    def step(carry, f):
        q, p, acc = carry
        if not rule:
            q, p, _ = leapfrog_step(cfg.energy, q, p, theta, f)
            return (q, p, acc), (q, None)
        q, p, _, g_theta, g_f = leapfrog_step(cfg.energy, q, p, theta, f, rule=True)
        return (q, p, _add(acc, g_theta)), (q, g_f)

    def block(carry, start, size):
        q, p, acc, acc_drive, ys, du, stored = carry
        if anchors:
            k = start // chunk
            stored = tuple(jax.lax.dynamic_update_index_in_dim(a, x, k, 0) for a, x in zip(stored, (q, p), strict=True))
        u_block = jax.lax.dynamic_slice_in_dim(us, start, size)
        (q, p, acc), (qs, gfs) = jax.lax.scan(step, (q, p, acc), drive_sequence(drive, u_block))
        ys = jax.lax.dynamic_update_slice_in_dim(ys, qs @ readout.T, start, 0)
        if rule:
            d_drive, du_block = _drive_vjp(drive, u_block, gfs)
            acc_drive, du = _add(acc_drive, d_drive), jax.lax.dynamic_update_slice_in_dim(du, du_block, start, 0)
        return q, p, acc, acc_drive, ys, du, stored

    ys = jnp.zeros((length, readout.shape[0]), q0.dtype)
    acc, acc_drive, du = (_zeros_like(theta), _zeros_like(drive), jnp.zeros_like(us)) if rule else (None,) * 3
    stored = (jnp.zeros((n_blocks, *q0.shape), q0.dtype), jnp.zeros((n_blocks, *p0.shape), p0.dtype))
    q, p, acc, acc_drive, ys, du, stored = over_blocks(
        block, (q0, p0, acc, acc_drive, ys, du, stored if anchors else None), length, chunk
    )
    return ys, (q, p), ((acc, acc_drive, du) if rule else None), stored


def _rhel_solve(cfg, theta, drive, readout, us, q0, p0, epsilon):
    del epsilon  # only the backward pass nudges
    return _forward(cfg, theta, drive, readout, us, q0, p0)[0]


_rhel_solve = jax.custom_vjp(_rhel_solve, nondiff_argnums=(0,))


def _rhel_fwd(cfg: _EchoConfig, theta, drive, readout, us, q0, p0, epsilon):
    rule = cfg.estimator.forward_weight != 0.0
    ys, (qK, pK), extra, anchors = _forward(cfg, theta, drive, readout, us, q0, p0, rule=rule, anchors=cfg.resync)
    return ys, (theta, drive, readout, us, q0, p0, qK, pK, extra, anchors, epsilon)


class _EchoCarry(NamedTuple):
    """What the HRU's echo carries from block to block (besides the echoes' states and rules)."""

    ybar: Array  # the output cotangent; dL/du overwrites it block by block once consumed (when shapes agree)
    du: Array | None  # dL/du, when it cannot overwrite ybar (input and output sizes differ)
    d_drive: Array | None  # dL/dB
    d_readout: Array  # dL/dC
    err: Array  # the largest return error of the echoes at a re-synchronisation
    nudges: Array  # sum_k max_j |C^T ybar_k|_j, the one-sided estimator's spread (0 for the symmetric ones)
    # renormalised re-synchronisation (a non-quadratic energy with resync_every), else None:
    gain: Array | None = None  # the echoes' differences are ``gain`` times what the nudges alone would make them
    rule: Params | None = None  # the weighted rule of the blocks done, each divided by the gain it ran with
    spread: Array | None = None  # the largest spread of the echoes (relative to the state's size) at an anchor


def _rhel_bwd(cfg: _EchoConfig, residuals, ybar):
    theta, drive, readout, us, q0, p0, qK, pK, extra, anchors, epsilon = residuals
    epsilon = eqx.error_if(
        epsilon, ~(jnp.isfinite(epsilon) & (epsilon > 0)), "RHEL epsilon must be positive and finite"
    )
    est = cfg.estimator
    fw = est.forward_weight
    length = us.shape[0]
    chunk = min(cfg.chunk, length)
    dtype = qK.dtype
    # a non-quadratic energy re-synchronised: the anchors also shrink the echoes' differences back to the size of one
    # nudge when the dynamics have amplified them (a quadratic energy's echoes are exact at any spread: left alone)
    renormalise = cfg.resync and cfg.energy.linear_coefficients is None

    # nudge size: eps in state units (relative) or eps times the raw cotangent (absolute); ``bound`` bounds the
    # largest entry of a momentum nudge C^T ybar_k
    bound = jnp.max(jnp.abs(ybar)) * jnp.max(jnp.sum(jnp.abs(readout), axis=0))
    scale = jnp.where(bound > 0, bound, 1.0) if cfg.relative else jnp.ones((), dtype)
    eps = epsilon / scale
    if renormalise:  # the largest single nudge in state units (epsilon itself when relative)
        target = jnp.abs(eps) * bound
        target = jnp.where(target > 0, target, 1.0)
    eps_e = jnp.asarray(est.multipliers, dtype) * eps  # (E,)
    a_e = jnp.asarray(est.weights, dtype)
    r_e = jnp.asarray(est.reconstruction, dtype)
    n_echo = len(est.multipliers)
    acc0, drive0, du0 = extra if extra is not None else (None, None, None)
    # a sequence without loss (a zero cotangent, e.g. a masked one) gets exactly zero gradient, not rounding / eps
    nudged = jnp.any(ybar != 0)

    def step(q, p, theta, x, force):
        del force  # an HRU is nudged by impulses
        q, p, _, g_theta, g_f = leapfrog_step(cfg.energy, q, p, theta, x[0], rule=True)
        return q, p, g_theta, g_f

    def read(carry, start, size):  # the drives and momentum nudges of a block: one matrix product each
        u_block = jax.lax.dynamic_slice_in_dim(us, start, size)
        ybar_block = jax.lax.dynamic_slice_in_dim(carry.ybar, start, size)
        # after the echo step that replays input k it reaches state k-1, which is nudged by C^T ybar_{k-1} (nothing
        # before the first step); ybar_{start-1} is still there: dL/du overwrites a block once the echo has left it
        before = jax.lax.dynamic_slice_in_dim(carry.ybar, jnp.maximum(start - 1, 0), 1)
        ynudge = jnp.concatenate([jnp.where(start > 0, before, 0), ybar_block[:-1]])
        if renormalise:  # the nudges join the echoes' differences at their current gain
            return drive_sequence(drive, u_block), (ynudge @ readout) * carry.gain
        return drive_sequence(drive, u_block), ynudge @ readout

    def combine(outs):  # per step, over the echoes (axis 0): the reconstructed forward state and the weighted dH/df
        q_start, g_f = outs  # the echoes' states before the step: their reconstruction is the forward state
        return sum(r_e[e] * q_start[e] for e in range(n_echo)), sum(a_e[e] * g_f[e] for e in range(n_echo))

    def block(carry, start, outs):
        q_rec, g_f = outs
        size = q_rec.shape[0]
        u_block = jax.lax.dynamic_slice_in_dim(us, start, size)
        ybar_block = jax.lax.dynamic_slice_in_dim(carry.ybar, start, size)
        d_drive, du = _drive_vjp(drive, u_block, g_f)
        # dL/du = -(finite difference of dH_1/2/df mapped through B) / eps, as dL/dtheta below
        du0_block = None if du0 is None else jax.lax.dynamic_slice_in_dim(du0, start, size)
        if renormalise:  # this block's differences carry the gain it ran with
            du = difference_quotient(eps * carry.gain, du)
            d_drive = jax.tree_util.tree_map(lambda g: g / carry.gain, d_drive)
        else:
            du = difference_quotient(eps, du, du0_block, fw)
        nudges = carry.nudges
        if fw != 0.0:
            nudges = nudges + jnp.sum(jnp.max(jnp.abs(ybar_block @ readout), axis=-1))
        carry = carry._replace(
            d_drive=_add(carry.d_drive, d_drive), d_readout=carry.d_readout + ybar_block.T @ q_rec, nudges=nudges
        )
        if carry.du is not None:
            return carry._replace(du=jax.lax.dynamic_update_slice_in_dim(carry.du, jnp.where(nudged, du, 0), start, 0))
        # dL/du overwrites this block of ybar. Where nothing is nudged, ybar is zero and so is dL/du: taking it from
        # ybar (|ybar|: +0) makes the write depend on this block's read, so XLA orders every read of the block (the
        # read-out gradient's too) before the write, instead of copying the whole buffer for them
        du = jnp.where(nudged, du, jnp.abs(ybar_block))
        return carry._replace(ybar=jax.lax.dynamic_update_slice_in_dim(carry.ybar, du, start, 0))

    # the size the echoes' return error is measured against
    size = 1.0 + jnp.max(jnp.abs(jnp.concatenate([q0, p0, qK, pK])))

    def anchor(carry, q, p, acc, start):  # re-synchronise: the echoes' mean onto the flipped forward state
        k = start // chunk
        q_fwd, p_fwd = (jax.lax.dynamic_index_in_dim(a, k, 0, keepdims=False) for a in anchors)
        mean_q, mean_p = r_e @ q, r_e @ p
        err = jnp.maximum(carry.err, echo_return_error(mean_q, mean_p, q_fwd, p_fwd, size))
        if not renormalise:  # differences kept as they are
            return carry._replace(err=err), q + (q_fwd - mean_q), p + (-p_fwd - mean_p), acc
        # Renormalised: differences larger than one nudge (amplified by the dynamics, where they would leave the
        # linear regime) are scaled back to it by r, and the gain records it. Every echo is still a smooth function
        # of its multiplier, so the estimator's weights still cancel its bias; what the echoes accumulated so far is
        # folded in first (as a weighted difference, before dividing by the gain: the echoes' common part cancels
        # at the size it was accumulated at), and the nudges to come are scaled by the new gain (``read``).
        dq, dp = q - mean_q, p - mean_p
        spread = jnp.maximum(jnp.max(jnp.abs(dq)), jnp.max(jnp.abs(dp)))
        r = jnp.where(spread > target, target / jnp.where(spread > 0, spread, 1.0), 1.0)
        rule = _add(carry.rule, jax.tree_util.tree_map(lambda g: g / carry.gain, weighted(a_e, acc)))
        carry = carry._replace(err=err, gain=carry.gain * r, rule=rule, spread=jnp.maximum(carry.spread, spread / size))
        return carry, q_fwd + r * dq, -p_fwd + r * dp, _zeros_like(acc)

    init = _EchoCarry(
        ybar=ybar,
        du=None if us.shape == ybar.shape and us.dtype == ybar.dtype else jnp.zeros_like(us),
        d_drive=_zeros_like(drive),
        d_readout=jnp.zeros_like(readout),
        err=jnp.zeros((), dtype),
        nudges=jnp.zeros((), dtype),
        gain=jnp.ones((), dtype) if renormalise else None,
        rule=_zeros_like(theta) if renormalise else None,
        spread=jnp.zeros((), dtype) if renormalise else None,
    )
    nudge = Nudge(start=readout.T @ ybar[-1], impulse=lambda e, x: e * x[1])
    q, p, acc_e, carry, _ = echo(
        step, theta, (qK, pK), eps_e, length=length, chunk=chunk, read=read, nudge=nudge,
        emit=lambda q_start, q1, p1, g_f, acc: (q_start, g_f), reduce=combine, block=block, carry=init,
        anchor=anchor if cfg.resync else None,
    )  # fmt: skip
    du = carry.ybar if carry.du is None else carry.du
    # where the echoes end: their mean near (q0, -p0) (the un-nudged term of the one-sided estimator ends there)
    err = jnp.maximum(carry.err, echo_return_error(r_e @ q, r_e @ p, q0, p0, size))
    # the nudges move the echoes' mean by O(spread^order) (order 1: a lone nudged echo, the one-sided estimator):
    # allow 10 times that, so that the check measures the contract, not the nudge
    if fw != 0.0:
        spread = jnp.abs(eps) * carry.nudges / size
        linearity = None
    else:
        spread = jnp.maximum(jnp.max(jnp.abs(q - r_e @ q)), jnp.max(jnp.abs(p - r_e @ p))) / size
        if renormalise:  # where they end they were scaled back: the largest spread was at an anchor
            spread = jnp.maximum(spread, carry.spread)
        # the symmetric echoes' mean strays by O(spread^2), their difference is O(spread): the ratio measures how far
        # the difference quotient is from a derivative (0 where nothing is nudged: the gradient is zero there)
        linearity = jnp.where(spread > 0, err / jnp.where(spread > 0, spread, 1.0), 0.0)
    err = jnp.maximum(err - 10.0 * spread**est.order, 0.0)

    # dL/dtheta = -(finite difference of dH_1/2/dtheta) / eps (Eq. 14 with the step folded into H), with the
    # estimator's eps = 0 term accumulated by the forward pass (one-sided); dL/du is already complete
    if renormalise:  # every block's rule was folded in at its anchor (the last one at the start: acc_e is zero)
        d_theta = difference_quotient(eps, carry.rule)
        dq0, dp0 = initial_state_gradient(a_e, eps * carry.gain, q, p, (q0, p0), fw)
    else:
        d_theta = difference_quotient(eps, weighted(a_e, acc_e), acc0, fw)
        dq0, dp0 = initial_state_gradient(a_e, eps, q, p, (q0, p0), fw)
    d_drive = difference_quotient(eps, carry.d_drive, drive0, fw)
    small = jax.tree_util.tree_map(
        lambda g: jnp.where(nudged, g, jnp.zeros_like(g)), (d_theta, d_drive, carry.d_readout, dq0, dp0)
    )
    d_theta, d_drive, d_readout, dq0, dp0 = small
    grads = (d_theta, d_drive, d_readout, du, dq0, dp0, jnp.zeros_like(epsilon))
    grads = echo_return_check(grads, err, dtype, cfg.check, linearity)
    return raise_if(
        grads,
        ~tree_all_finite(grads),
        "RHEL produced a non-finite gradient: an echo diverged (an unstable step size, an energy that is not "
        "time-reversal invariant, or an epsilon too large for this model) or the gradient itself overflows (an "
        "exploding gradient over a long sequence); try a smaller epsilon, float64, shorter sequences, or BPTT",
    )


_rhel_solve.defvjp(_rhel_fwd, _rhel_bwd)
