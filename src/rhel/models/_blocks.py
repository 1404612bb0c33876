"""The HSSM block: BatchNorm → HRU → GELU → dropout → GLU → dropout → + skip."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


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


class HSSMBlock(eqx.Module):
    """One block ``x ← x + Drop(GLU(Drop(GELU(HRU(BatchNorm(x))))))`` on one sequence (vmap it over a batch whose
    axis is named as the norm's ``axis_name``).

    With ``remat_ff`` (the default) the feed-forward parts (BatchNorm, and GELU/dropout/GLU/dropout) are wrapped in
    ``jax.checkpoint``: their intermediates are recomputed in the backward pass instead of being stored, so a block
    keeps only its input, the HRU's input and the HRU's output alive, whatever the gradient method.
    """

    norm: eqx.nn.BatchNorm
    unit: Any
    glu: GLU
    dropout: eqx.nn.Dropout
    remat_ff: bool = eqx.field(static=True)

    def __init__(
        self,
        hidden: int,
        unit: Any,
        *,
        dropout: float = 0.05,
        axis_name: str = "batch",
        remat_ff: bool = True,
        dtype=None,
        key: PRNGKeyArray,
    ):
        self.norm = eqx.nn.BatchNorm(hidden, axis_name=axis_name, channelwise_affine=False, mode="batch", dtype=dtype)
        self.unit = unit
        self.glu = GLU(hidden, hidden, dtype=dtype, key=key)
        self.dropout = eqx.nn.Dropout(dropout)
        self.remat_ff = remat_ff

    def __call__(
        self,
        x: Float[Array, "L H"],
        state: eqx.nn.State,
        *,
        key: PRNGKeyArray | None = None,
        gradient: Any = None,
    ) -> tuple[Float[Array, "L H"], eqx.nn.State]:
        keys = (None, None) if key is None else tuple(jax.random.split(key))
        normalise, feed_forward = _normalise, _feed_forward
        if self.remat_ff:
            normalise, feed_forward = eqx.filter_checkpoint(normalise), eqx.filter_checkpoint(feed_forward)
        u, state = normalise(self.norm, x, state)
        y = self.unit(u, gradient=gradient) if gradient is not None else self.unit(u)
        return feed_forward(self.glu, self.dropout, y, x, keys), state


def time_channel(x: Float[Array, "L C"]) -> Float[Array, "L C+1"]:
    """Append the channel ``t / L`` (values in [0, 1)) to a sequence."""
    length = x.shape[0]
    t = jnp.arange(length, dtype=x.dtype) / length
    return jnp.concatenate([x, t[:, None]], axis=1)
