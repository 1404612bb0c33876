"""The memory floor of an HSSM block: custom VJPs that keep one copy of each sequence the backward pass needs.

Per block, reverse-mode autodiff of ``x + Drop(GLU(Drop(GELU(HRU(BatchNorm(x))))))`` needs only two sequences from
the forward pass: the HRU's input ``u`` (the echo replays it, and it also serves the normalisation's backward pass)
and the HRU's output ``y`` (the feed-forward is recomputed from it). Everything else is re-materialised:

* :func:`standardise`: the batch normalisation's backward pass is written in terms of its *output* ``u`` (and the
  per-channel ``1 / std``), so its input ``x`` is never stored; it works in ``(L, H)`` layout (no transposes), and
  ``u`` is computed in a loop over blocks of time steps (:func:`map_blocks`), so that XLA cannot recompute it from
  ``x`` inside its consumers.
* :func:`feed_forward`: GELU → dropout → GLU → dropout over blocks of ``chunk`` time steps, in place (a
  ``fori_loop`` writing each block into the output), and its backward pass recomputes each block from ``y`` and
  writes ``dL/dy`` block by block. Dropout masks are drawn per time step from ``fold_in(key, t)``, so they are the
  same whichever block a step falls in, and need no storage.
* :func:`encode`: the encoder (a linear map of each step's input) in blocks of time steps, forwards and backwards:
  no whole-sequence matrix product, whose operands XLA transposes into copies of the sequence.
* :func:`materialise`: an identity whose backward pass copies the cotangent in a loop, at the block's input: the
  cotangent handed to the block below is computed once, there, rather than recomputed inside each of its consumers.

Why loops: XLA fuses elementwise maps into their consumers, recomputing them there, and reads their inputs as late as
the last consumer. A normalisation's output recomputed from its input inside the backward pass keeps that input alive
until then; a block's input cotangent recomputed inside the encoder's gradient keeps every block's sequences alive
until the end of the step. A loop's output is computed once, and its inputs die with it. (``optimization_barrier``
does not survive XLA's CPU pipeline.)
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

# ---------------------------------------------------------------------------------------------- normalisation


def batch_statistics(x: Float[Array, "L H"], axis_name: str) -> tuple[Array, Array]:
    """Per-channel mean and (biased) variance over time and the vmapped batch axis ``axis_name``, as
    ``eqx.nn.BatchNorm(mode="batch")`` takes them."""
    mean = jax.lax.pmean(jnp.mean(x, axis=0), axis_name)
    var = jax.lax.pmean(jnp.mean((x - mean) ** 2, axis=0), axis_name)
    return mean, jnp.maximum(0.0, var)


def map_blocks(fn, x: Float[Array, "L ..."], chunk: int, out: Array | None = None) -> Array:
    """``fn`` applied to ``x`` block by block of ``chunk`` time steps in a ``fori_loop``, into a new sequence.

    ``fn`` maps a block of steps to a block of the output's rows, step by step (the last block is shifted back to end
    at the last step and recomputes the steps it shares with the one before). The result is a loop's output, which
    XLA computes once, where it would recompute an elementwise map inside each of its consumers. ``out``: the buffer
    the blocks are written into, for an output of another shape or dtype than ``x`` (default: a copy of ``x``).
    """
    length = x.shape[0]
    chunk, n = _block_starts(length, chunk)

    def body(i, carry):
        out, x = carry
        start = _start(i, chunk, length)
        block = fn(jax.lax.dynamic_slice_in_dim(x, start, chunk)).astype(out.dtype)
        return jax.lax.dynamic_update_slice_in_dim(out, block, start, 0), x

    # by default the output overwrites a copy of x, which XLA allocates where x is computed (a buffer of zeros would
    # be shared with every other one of its shape, and allocated at the start of the program)
    return jax.lax.fori_loop(0, n, body, (x if out is None else out, x))[0]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2, 3))
def standardise(x: Float[Array, "L H"], eps: float, axis_name: str, chunk: int = 256) -> tuple[Array, Array, Array]:
    """``((x - mean) / sqrt(var + eps), mean, var)`` with the batch statistics (see :func:`batch_statistics`).

    Its derivative is written in terms of the output ``u`` and ``s = sqrt(var + eps)`` only, so reverse mode stores
    those (``u`` is the HRU's input anyway), never ``x``. (A custom JVP rather than a VJP: the batch mean is a
    collective over the vmapped axis, which a custom VJP's backward pass cannot name.) ``u`` is computed in blocks of
    ``chunk`` time steps (:func:`map_blocks`): were XLA to recompute it from ``x`` where it is used, ``x`` would live
    until the normalisation's backward pass.
    """
    mean, var = batch_statistics(x, axis_name)
    s = jnp.sqrt(var + eps)
    return map_blocks(lambda x: (x - mean) / s, x, chunk), mean, var


@standardise.defjvp
def _standardise_jvp(eps, axis_name, chunk, primals, tangents):
    (x,), (dx,) = primals, tangents
    u, mean, var = standardise(x, eps, axis_name, chunk)
    s = jnp.sqrt(var + eps)

    def over_batch(v):  # the mean over time and batch
        return jax.lax.pmean(jnp.mean(v, axis=0), axis_name)

    # u = (x - m) / s: du = (dx - dm - u mean(u dx)) / s with dm = mean(dx) and dv = 2 s mean(u dx)
    d_mean, u_dx = over_batch(dx), over_batch(u * dx)
    return (u, mean, var), ((dx - d_mean - u * u_dx) / s, d_mean, 2.0 * s * u_dx)


# ---------------------------------------------------------------------------------------------- feed-forward


@dataclasses.dataclass(frozen=True)
class FeedForwardConfig:
    """The static part of :func:`feed_forward`: dropout probability (0: none) and the block size in time steps."""

    p: float
    chunk: int


def dropout_per_step(x: Float[Array, "T H"], p: float, key: PRNGKeyArray | None, start: Array | int) -> Array:
    """Inverted dropout whose mask for row ``i`` (time step ``start + i``) is drawn from ``fold_in(key, step)``:
    the same mask whether a step is computed alone, in a block or with the whole sequence."""
    if p == 0 or key is None:
        return x
    q = 1.0 - p
    steps = start + jnp.arange(x.shape[0])
    keep = jax.vmap(lambda t: jax.random.bernoulli(jax.random.fold_in(key, t), q, x.shape[1:]))(steps)
    return jnp.where(keep, x / q, 0)


def feed_forward_block(glu, y: Float[Array, "T H"], keys, p: float, start: Array | int) -> Array:
    """``Drop(GLU(Drop(GELU(y))))`` on the time steps ``start .. start + T - 1`` (``keys``: two keys or None)."""
    k1, k2 = (None, None) if keys is None else keys
    h = dropout_per_step(jax.nn.gelu(y), p, k1, start)
    return dropout_per_step(jax.vmap(glu)(h), p, k2, start)


def _block_starts(length: int, chunk: int) -> tuple[int, int]:
    chunk = min(chunk, length)
    return chunk, -(-length // chunk)


def _start(i, chunk, length):
    # the last block is shifted back to end at the last step (it overlaps the one before when chunk does not divide L)
    return jnp.minimum(i * chunk, length - chunk)


def _fresh(i, start, chunk):
    """Which rows of block ``i`` (starting at ``start``) no earlier block covers: all but the overlap of a shifted
    last block, so that a sum over blocks counts each step once."""
    return (start + jnp.arange(chunk)) >= i * chunk


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def feed_forward(cfg: FeedForwardConfig, glu, y: Float[Array, "L H"], skip: Float[Array, "L H"], keys) -> Array:
    """``skip + Drop(GLU(Drop(GELU(y))))`` over the sequence, computed and differentiated in blocks of ``cfg.chunk``
    steps, in place: the output overwrites ``skip``'s buffer and, backwards, ``dL/dy`` overwrites ``y``'s.

    **Arguments:**

    - `cfg`: dropout probability and block size (:class:`FeedForwardConfig`).
    - `glu`: the gated linear unit (a module applied to one feature vector).
    - `y`: the HRU's output sequence; the only sequence its VJP stores.
    - `skip`: the block's input (the residual connection).
    - `keys`: two PRNG keys (the two dropouts) or ``None`` (no dropout).
    """
    return _feed_forward_loop(cfg, glu, y, skip, keys)[0]


def _feed_forward_loop(cfg, glu, y, skip, keys):
    # y travels in the loop's carry (unchanged) rather than as a loop invariant, which XLA would copy
    length = y.shape[0]
    chunk, n = _block_starts(length, cfg.chunk)

    def body(i, carry):
        out, y = carry
        start = _start(i, chunk, length)
        fresh = _fresh(i, start, chunk)  # steps no earlier block has written
        old = jax.lax.dynamic_slice_in_dim(out, start, chunk)
        new = old + feed_forward_block(glu, jax.lax.dynamic_slice_in_dim(y, start, chunk), keys, cfg.p, start)
        return jax.lax.dynamic_update_slice_in_dim(out, jnp.where(fresh[:, None], new, old), start, 0), y

    return jax.lax.fori_loop(0, n, body, (skip, y))


def _feed_forward_fwd(cfg, glu, y, skip, keys):
    out, y = _feed_forward_loop(cfg, glu, y, skip, keys)
    return out, (glu, y, keys)


def _feed_forward_bwd(cfg, residuals, g):
    glu, y, keys = residuals
    length = y.shape[0]
    chunk, n = _block_starts(length, cfg.chunk)

    # blocks in reverse order, dL/dy overwriting y: the last block (shifted back when chunk does not divide L) writes
    # back y on the steps it shares with the block before, which still needs them
    def body(j, carry):
        buf, g, gglu = carry
        i = n - 1 - j
        start = _start(i, chunk, length)
        fresh = _fresh(i, start, chunk)[:, None]
        y_block = jax.lax.dynamic_slice_in_dim(buf, start, chunk)
        g_block = jnp.where(fresh, jax.lax.dynamic_slice_in_dim(g, start, chunk), 0)
        _, vjp = jax.vjp(lambda glu, yb: feed_forward_block(glu, yb, keys, cfg.p, start), glu, y_block)
        d_glu, d_y = vjp(g_block)
        buf = jax.lax.dynamic_update_slice_in_dim(buf, jnp.where(fresh, d_y, y_block), start, 0)
        return buf, g, jax.tree_util.tree_map(jnp.add, gglu, d_glu)

    zeros = jax.tree_util.tree_map(jnp.zeros_like, glu)
    gy, g, gglu = jax.lax.fori_loop(0, n, body, (y, g, zeros))
    return gglu, gy, g, None


feed_forward.defvjp(_feed_forward_fwd, _feed_forward_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def materialise(x: Float[Array, "L H"], chunk: int = 256) -> Array:
    """``x`` itself; its backward pass copies the cotangent in blocks of ``chunk`` time steps (:func:`map_blocks`).

    At a block's input, the cotangent handed to the block below (its own normalisation's and skip's, summed) is then
    computed once, into the copy, and every later use reads the copy: left to itself, XLA recomputes that sum inside
    each consumer, down to the encoder's gradient at the end of the step, which keeps every block's sequences alive
    until then.
    """
    return x


def _materialise_fwd(x, chunk):
    return x, None


def _materialise_bwd(chunk, _, g):
    return (map_blocks(lambda g: g, g, chunk),)


materialise.defvjp(_materialise_fwd, _materialise_bwd)


# ---------------------------------------------------------------------------------------------- encoder


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def encode(weight: Array, bias: Array | None, x: Float[Array, "L C"], chunk: int = 256) -> Float[Array, "L H"]:
    """``x @ weight.T + bias`` step by step, computed in blocks of ``chunk`` time steps in a loop (forwards and
    backwards: ``dL/dweight`` and ``dL/dbias`` accumulate block by block, ``dL/dx`` is written block by block).

    The same map as ``jax.vmap(eqx.nn.Linear)``; computed on the whole sequence, XLA lays the product out as
    ``(H, L)`` and transposes it back, and transposes the cotangent for the weight gradient: three extra copies of a
    sequence around the peak of a training step.
    """
    return _encode_loop(weight, bias, x, chunk)


def _encode_block(weight, bias, x_block):
    y = x_block @ weight.T
    return y if bias is None else y + bias


def _encode_loop(weight, bias, x, chunk):
    out = jnp.zeros((x.shape[0], weight.shape[0]), jnp.result_type(weight, x))
    return map_blocks(lambda x_block: _encode_block(weight, bias, x_block), x, chunk, out)


def _encode_fwd(weight, bias, x, chunk):
    return _encode_loop(weight, bias, x, chunk), (weight, bias, x)


def _encode_bwd(chunk, residuals, g):
    weight, bias, x = residuals
    length = x.shape[0]
    chunk, n = _block_starts(length, chunk)

    def body(i, carry):
        dw, db, dx = carry
        start = _start(i, chunk, length)
        fresh = _fresh(i, start, chunk)[:, None]
        g_block = jnp.where(fresh, jax.lax.dynamic_slice_in_dim(g, start, chunk), 0)
        x_block = jax.lax.dynamic_slice_in_dim(x, start, chunk)
        dw = dw + g_block.T @ x_block
        db = None if db is None else db + jnp.sum(g_block, axis=0)
        dx_block = jnp.where(fresh, g_block @ weight, jax.lax.dynamic_slice_in_dim(dx, start, chunk))
        return dw, db, jax.lax.dynamic_update_slice_in_dim(dx, dx_block.astype(dx.dtype), start, 0)

    init = (jnp.zeros_like(weight), None if bias is None else jnp.zeros_like(bias), jnp.zeros_like(x))
    dw, db, dx = jax.lax.fori_loop(0, n, body, init)
    return dw, db, dx


encode.defvjp(_encode_fwd, _encode_bwd)
