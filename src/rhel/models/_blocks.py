"""The HSSM block: BatchNorm → HRU → GELU → dropout → GLU → dropout → + skip."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from rhel.gradients import AbstractGradient
from rhel.models._lean import FeedForwardConfig, feed_forward, feed_forward_block, materialise, standardise


class GLU(eqx.Module):
    """Gated linear unit ``W1 x ⊙ sigmoid(W2 x)`` (both maps with bias), applied to one feature vector."""

    value: eqx.nn.Linear
    gate: eqx.nn.Linear

    def __init__(self, in_size: int, out_size: int, *, dtype=None, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        self.value = eqx.nn.Linear(in_size, out_size, dtype=dtype, key=k1)
        self.gate = eqx.nn.Linear(in_size, out_size, dtype=dtype, key=k2)

    def __call__(self, x: Float[Array, " H"]) -> Float[Array, " H"]:
        return self.value(x) * jax.nn.sigmoid(self.gate(x))


def _normalise(norm: eqx.nn.BatchNorm, x: Float[Array, "L H"], state: eqx.nn.State, lean: bool, chunk: int):
    """BatchNorm (``mode="batch"``, no affine) on one sequence; ``lean``: through :func:`standardise` (the VJP stores
    the output only, no transposes; computed in blocks of ``chunk`` steps), else ``eqx.nn.BatchNorm`` itself
    (channels first)."""
    # work on a clone: setting a state invalidates it, and callers may reuse theirs (as under the former checkpoint)
    leaves, treedef = jax.tree_util.tree_flatten(state)
    state = jax.tree_util.tree_unflatten(treedef, leaves)
    if norm.inference:
        mean, var = running_statistics(norm, state)
        return ((x - mean) / jnp.sqrt(var + norm.eps)).astype(x.dtype), state
    if not lean:
        y, state = norm(x.T, state)
        return y.T, state
    u, mean, var = standardise(x, norm.eps, norm.axis_name, chunk)
    # the running statistics, updated as eqx.nn.BatchNorm(mode="batch") updates them
    counter = state.get(norm.batch_counter)
    hidden_mean, hidden_var = state.get(norm.batch_state_index)
    mean, var = jax.lax.stop_gradient((mean, var))
    state = state.set(norm.batch_counter, counter + 1)
    momentum = norm.momentum
    running = (hidden_mean * momentum + mean * (1 - momentum), hidden_var * momentum + var * (1 - momentum))
    state = state.set(norm.batch_state_index, running)
    return u, state


def running_statistics(norm: eqx.nn.BatchNorm, state: eqx.nn.State) -> tuple[Array, Array]:
    """The mean and variance an HSSM block normalises with in inference mode: the exponential moving averages of the
    training batches' statistics, each debiased for its starting value.

    ``eqx.nn.BatchNorm(mode="batch")`` starts the averages at mean 0 and variance 1 and divides both by
    ``1 - momentum**n`` at inference: right for the mean, but it leaves the variance's start in, an excess of
    ``momentum**n / (1 - momentum**n)`` (0.018 after 400 steps at momentum 0.99: 36 times the variance of raw audio
    encoded at 5e-4, which then reaches the next layer shrunk 6-fold). Here ``(avg - momentum**n * start) /
    (1 - momentum**n)``: exactly the weighted mean of the batches' statistics, and the starting values before any
    training step. The state is eqx's, so models saved before this correction load and evaluate correctly too.
    """
    if norm.channelwise_affine:
        raise ValueError("HSSM blocks normalise without an affine map (channelwise_affine=False)")
    counter = state.get(norm.batch_counter)
    average = state.get(norm.batch_state_index)
    start = (0.0, 1.0)  # eqx's starting values (tests/test_models_hssm.py checks them)
    decay = jnp.power(jnp.asarray(norm.momentum, average[0].dtype), counter)
    trained = counter > 0
    scale = jnp.where(trained, 1 - decay, 1)
    mean, var = (jnp.where(trained, (a - decay * s) / scale, s) for a, s in zip(average, start, strict=True))
    return mean, jnp.maximum(var, 0.0)


def _dropout_probability(dropout: eqx.nn.Dropout, keys) -> float:
    """The dropout probability in effect (0 in inference mode); a missing key in training mode is an error."""
    if dropout.inference or dropout.p == 0:
        return 0.0
    if keys is None:
        raise RuntimeError("HSSMBlock: dropout needs a key in training mode; pass key=... or use eqx.nn.inference_mode")
    return float(dropout.p)


class HSSMBlock(eqx.Module):
    """One block ``x ← x + Drop(GLU(Drop(GELU(HRU(BatchNorm(x))))))`` on one sequence (vmap it over a batch whose
    axis is named as the norm's ``axis_name``).

    With ``remat_ff`` (the default) the block keeps two sequences for the backward pass, whatever the gradient
    method: the HRU's input ``u`` and its output ``y`` (see :mod:`rhel.models._lean`). The normalisation's VJP is
    written in terms of ``u``, and the feed-forward (GELU → dropout → GLU → dropout) runs, forwards and backwards, in
    blocks of ``ff_chunk`` time steps recomputed from ``y``, with dropout masks redrawn from their keys; the
    normalisation's output and the cotangent of the block's input are computed in loops over blocks of ``ff_chunk``
    steps too, so that XLA computes each once (:func:`rhel.models._lean.materialise`). Without ``remat_ff`` every
    intermediate is stored (plain autodiff, the same function).
    """

    norm: eqx.nn.BatchNorm
    unit: Any
    glu: GLU
    dropout: eqx.nn.Dropout
    remat_ff: bool = eqx.field(static=True)
    ff_chunk: int = eqx.field(static=True)

    def __init__(
        self,
        hidden: int,
        unit: Any,
        *,
        dropout: float = 0.05,
        axis_name: str = "batch",
        remat_ff: bool = True,
        ff_chunk: int = 256,
        dtype=None,
        key: PRNGKeyArray,
    ):
        self.norm = eqx.nn.BatchNorm(hidden, axis_name=axis_name, channelwise_affine=False, mode="batch", dtype=dtype)
        self.unit = unit
        self.glu = GLU(hidden, hidden, dtype=dtype, key=key)
        self.dropout = eqx.nn.Dropout(dropout)
        self.remat_ff = remat_ff
        if not isinstance(ff_chunk, int) or ff_chunk < 1:
            raise ValueError(f"ff_chunk must be a positive integer, got {ff_chunk!r}")
        self.ff_chunk = ff_chunk

    def __call__(
        self,
        x: Float[Array, "L H"],
        state: eqx.nn.State,
        *,
        key: PRNGKeyArray | None = None,
        gradient: AbstractGradient | None = None,
    ) -> tuple[Float[Array, "L H"], eqx.nn.State]:
        keys = None if key is None else tuple(jax.random.split(key))
        p = _dropout_probability(self.dropout, keys)
        if self.remat_ff:
            x = materialise(x, self.ff_chunk)
        u, state = _normalise(self.norm, x, state, self.remat_ff, self.ff_chunk)
        y = self.unit(u, gradient=gradient) if gradient is not None else self.unit(u)
        if self.remat_ff:
            return feed_forward(FeedForwardConfig(p, self.ff_chunk), self.glu, y, x, keys), state
        return x + feed_forward_block(self.glu, y, keys, p, 0), state


def time_channel(x: Float[Array, "L C"]) -> Float[Array, "L C+1"]:
    """Append the channel ``t / L`` (values in [0, 1)) to a sequence."""
    length = x.shape[0]
    t = jnp.arange(length, dtype=x.dtype) / length
    return jnp.concatenate([x, t[:, None]], axis=1)
