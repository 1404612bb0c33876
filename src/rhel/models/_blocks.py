"""The HSSM block: BatchNorm → HRU → GELU → dropout → GLU → dropout → + skip."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from rhel.gradients import AbstractGradient


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


def _normalise(norm: eqx.nn.BatchNorm, x: Float[Array, "L H"], state: eqx.nn.State):
    # eqx.nn.BatchNorm wants channels first; the statistics are taken over the batch (vmap axis) and time.
    y, state = norm(x.T, state)
    return y.T, state


def _feed_forward(glu: GLU, dropout: eqx.nn.Dropout, y, skip, keys):
    y = dropout(jax.nn.gelu(y), key=keys[0])
    y = dropout(jax.vmap(glu)(y), key=keys[1])
    return skip + y


def _feed_forward_in_chunks(glu: GLU, dropout: eqx.nn.Dropout, y, skip, keys, chunk: int):
    """The feed-forward part over blocks of ``chunk`` time steps, each re-materialised in the backward pass.

    The feed-forward acts on each time step alone, so running it block by block (``lax.map``) with a checkpoint per
    block bounds its backward-pass intermediates to ``chunk`` steps instead of the whole sequence. Dropout keys are
    folded with the block index.
    """
    length = y.shape[0]
    chunk = min(chunk, length)
    n = -(-length // chunk)

    def fold(x):
        return jnp.pad(x, [(0, n * chunk - length), (0, 0)]).reshape(n, chunk, x.shape[-1])

    @eqx.filter_checkpoint
    def one(glu, y_block, skip_block, index):
        block_keys = keys if keys[0] is None else tuple(jax.random.fold_in(k, index) for k in keys)
        return _feed_forward(glu, dropout, y_block, skip_block, block_keys)

    out = jax.lax.map(lambda xs: one(glu, *xs), (fold(y), fold(skip), jnp.arange(n)))
    return out.reshape(n * chunk, -1)[:length]


class HSSMBlock(eqx.Module):
    """One block ``x ← x + Drop(GLU(Drop(GELU(HRU(BatchNorm(x))))))`` on one sequence (vmap it over a batch whose
    axis is named as the norm's ``axis_name``).

    With ``remat_ff`` (the default) the feed-forward parts (BatchNorm, and GELU/dropout/GLU/dropout) are wrapped in
    ``jax.checkpoint``: their intermediates are recomputed in the backward pass instead of being stored, so a block
    keeps only its input, the HRU's input and the HRU's output alive, whatever the gradient method. The per-step
    part (GELU/dropout/GLU/dropout) then runs in blocks of ``ff_chunk`` time steps, so that its backward pass, too,
    holds only ``ff_chunk`` steps of intermediates at a time.
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
        keys = (None, None) if key is None else tuple(jax.random.split(key))
        normalise = eqx.filter_checkpoint(_normalise) if self.remat_ff else _normalise
        u, state = normalise(self.norm, x, state)
        y = self.unit(u, gradient=gradient) if gradient is not None else self.unit(u)
        if self.remat_ff:
            return _feed_forward_in_chunks(self.glu, self.dropout, y, x, keys, self.ff_chunk), state
        return _feed_forward(self.glu, self.dropout, y, x, keys), state


def time_channel(x: Float[Array, "L C"]) -> Float[Array, "L C+1"]:
    """Append the channel ``t / L`` (values in [0, 1)) to a sequence."""
    length = x.shape[0]
    t = jnp.arange(length, dtype=x.dtype) / length
    return jnp.concatenate([x, t[:, None]], axis=1)
