"""HSSM: shapes, heads, BatchNorm state, and RHEL == BPTT through the whole stack (Algorithm 1's chaining).

float64 (enabled in conftest.py) because the linear-HRU claim is exactness: the central RHEL estimator is exact for
every epsilon on a quadratic energy, so the only difference from BPTT is rounding, which float64 puts near 1e-13.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rhel
from rhel.models import HSSM, apply_batch, batch_loss

B, L, C = 3, 24, 2


def _grads(model, state, x, y, gradient, mask=None):
    """(loss, gradient of every inexact leaf), jitted."""

    @eqx.filter_jit
    def value_and_grad(m):
        return eqx.filter_value_and_grad(lambda m: batch_loss(m, state, x, y, gradient=gradient, mask=mask)[0])(m)

    loss, grads = value_and_grad(model)
    return loss, eqx.filter(grads, eqx.is_inexact_array)


def _relative_errors(ga, gb):
    leaves_a, leaves_b = jax.tree.leaves(ga), jax.tree.leaves(gb)
    assert len(leaves_a) == len(leaves_b)
    return [float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b)) for a, b in zip(leaves_a, leaves_b, strict=True)]


@pytest.fixture(scope="module")
def data():
    kx, ky = jax.random.split(jax.random.key(7))
    x = jax.random.normal(kx, (B, L, C))
    return x, jax.random.randint(ky, (B,), 0, 3), jnp.tanh(jax.random.normal(ky, (B, L // 4, 2)))


LINEAR = dict(hidden=6, state_size=5, num_blocks=2, unit="linear", time_channel=True, dropout=0.0)


@pytest.fixture(scope="module")
def linear_bptt(data):
    """A 2-block linear HSSM (feed-forward parts rematerialised) and its BPTT loss and gradients."""
    x, y, _ = data
    model, state = eqx.nn.make_with_state(HSSM)(C, 3, **LINEAR, key=jax.random.key(0))
    return model, state, *_grads(model, state, x, y, rhel.BPTT())


def test_linear_hssm_rhel_equals_bptt_every_leaf(data, linear_bptt):
    x, y, _ = data
    model, state, loss_bptt, g_bptt = linear_bptt
    loss_rhel, g_rhel = _grads(model, state, x, y, rhel.RHEL(epsilon=0.3))
    assert loss_rhel == loss_bptt  # the gradient method never changes the forward pass
    errors = _relative_errors(g_rhel, g_bptt)
    # every parameter: encoder (2), two HRUs (A, step, B re/im, C re/im, D) and GLUs (4), head (2)
    assert len(errors) == 2 + 2 * (7 + 4) + 2
    assert max(errors) <= 1e-9, errors
    # the HRU leaves really receive gradient (the test would be vacuous with zeros)
    assert all(float(jnp.linalg.norm(g)) > 0 for g in jax.tree.leaves(g_bptt))


def test_remat_does_not_change_gradients(data, linear_bptt):
    x, y, _ = data
    _, _, loss_remat, g_remat = linear_bptt
    plain, state = eqx.nn.make_with_state(HSSM)(C, 3, **LINEAR, remat_ff=False, key=jax.random.key(0))
    loss_plain, g_plain = _grads(plain, state, x, y, rhel.BPTT())
    np.testing.assert_allclose(loss_plain, loss_remat, rtol=1e-14)
    for a, b in zip(jax.tree.leaves(g_remat), jax.tree.leaves(g_plain), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_linear_hssm_regression_rhel_equals_bptt(data):
    x, _, targets = data
    model, state = eqx.nn.make_with_state(HSSM)(
        C, 2, task="regression", hidden=6, state_size=4, num_blocks=1, output_step=4, dropout=0.0,
        unit_options={"complex_state": False}, key=jax.random.key(1),
    )  # fmt: skip
    (_, g_rhel), (_, g_bptt) = (
        _grads(model, state, x, targets, rhel.RHEL()),
        _grads(model, state, x, targets, rhel.BPTT()),
    )
    errors = _relative_errors(g_rhel, g_bptt)
    assert len(errors) == 2 + (5 + 4) + 2  # real state: no imaginary parts of B and C
    assert max(errors) <= 1e-9, errors


def test_nonlinear_hssm_rhel_close_to_bptt(data):
    # Nonlinear HRUs: RHEL's central estimator has an O(eps^2) bias; with the float64 default eps (6e-6, relative)
    # the bias is ~1e-11 and rounding dominates (measured: <= 1e-9 per leaf). We state 1e-6 per leaf.
    x, y, _ = data
    model, state = eqx.nn.make_with_state(HSSM)(
        C, 3, hidden=6, state_size=5, num_blocks=2, unit="nonlinear", dropout=0.0, key=jax.random.key(2)
    )
    (_, g_rhel), (_, g_bptt) = _grads(model, state, x, y, rhel.RHEL()), _grads(model, state, x, y, rhel.BPTT())
    errors = _relative_errors(g_rhel, g_bptt)
    assert len(errors) == 2 + 2 * (8 + 4) + 2  # nonlinear HRU: W, b, c, alpha, B, C, D, step
    assert max(errors) <= 1e-6, errors


def test_batchnorm_state_and_inference_mode(data):
    x, _, _ = data
    model, state = eqx.nn.make_with_state(HSSM)(C, 3, hidden=6, state_size=4, num_blocks=1, key=jax.random.key(5))
    _, new_state = eqx.filter_jit(apply_batch)(model, state, x * 3.0 + 1.0, key=jax.random.key(0))
    changed = [
        not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new_state), strict=True)
    ]
    assert any(changed)
    # inference mode: deterministic (no dropout), per-sequence (no batch statistics): a sequence's output does
    # not depend on the rest of the batch
    inference = eqx.nn.inference_mode(model)
    full, _ = eqx.filter_jit(apply_batch)(inference, new_state, x)
    single, _ = eqx.filter_jit(apply_batch)(inference, new_state, x[:1])
    np.testing.assert_allclose(full[:1], single, rtol=1e-12)


@pytest.mark.parametrize("lean", [True, False])
def test_inference_normalises_with_the_debiased_average_of_the_batches_statistics(lean):
    """In inference mode a block normalises with exactly the momentum-weighted mean of the training batches'
    statistics. eqx's own BatchNorm(mode="batch") keeps its variance's starting value of 1 in that average (an
    excess of m**n / (1 - m**n)): for inputs of variance 1e-3 after 40 steps that is 0.5, a 500-fold error."""
    from rhel.models._blocks import HSSMBlock, running_statistics

    start_mean, start_var = eqx.nn.BatchNorm(2, "batch", mode="batch").batch_state_index.init
    np.testing.assert_array_equal(start_mean, 0.0)  # the starting values running_statistics assumes
    np.testing.assert_array_equal(start_var, 1.0)
    unit = rhel.units.LinearHRU(2, 4, key=jax.random.key(0))
    block, state = eqx.nn.make_with_state(HSSMBlock)(2, unit, dropout=0.0, remat_ff=lean, key=jax.random.key(1))
    mean0, var0 = running_statistics(block.norm, state)
    np.testing.assert_array_equal(mean0, 0.0)  # before any training step: the starting values
    np.testing.assert_array_equal(var0, 1.0)
    step = eqx.filter_jit(lambda b, s, x: jax.vmap(b, in_axes=(0, None), out_axes=(0, None), axis_name="batch")(x, s))
    batches = 0.03 * jax.random.normal(jax.random.key(2), (40, 3, 10, 2)) + jnp.array([0.5, -2.0])
    for x in batches:
        _, state = step(block, state, x)
    m = block.norm.momentum
    weights = (1 - m) * m ** np.arange(len(batches))[::-1]
    means = np.asarray(batches.mean(axis=(1, 2)))
    variances = np.asarray(batches.var(axis=(1, 2)))
    mean, var = running_statistics(block.norm, state)
    np.testing.assert_allclose(mean, weights @ means / weights.sum(), rtol=1e-10)
    np.testing.assert_allclose(var, weights @ variances / weights.sum(), rtol=1e-8)
    # the inference-mode block uses them (its HRU's input is x normalised by them)
    inference = eqx.nn.inference_mode(block)
    x = batches[0, 0]
    captured = []
    spy = eqx.tree_at(lambda b: b.unit, inference, replace_fn=lambda u: lambda v, **kw: captured.append(v) or u(v))
    spy(x, state)
    np.testing.assert_allclose(captured[0], (x - mean) / np.sqrt(var + block.norm.eps), rtol=1e-10)


def test_mask_and_heads(data):
    x, _, _ = data
    model, state = eqx.nn.make_with_state(HSSM)(
        C, 3, hidden=6, state_size=4, num_blocks=1, dropout=0.0, key=jax.random.key(6)
    )
    model = eqx.nn.inference_mode(model)
    mask = jnp.arange(L)[None, :] < jnp.array([L, 10, 5])[:, None]
    # masked steps do not change the classification (mean over the valid steps only; the model is causal)
    run = eqx.filter_jit(apply_batch)
    out, _ = run(model, state, x, mask=mask)
    garbage = jnp.where(mask[..., None], x, 100.0)
    out2, _ = run(model, state, garbage, mask=mask)
    np.testing.assert_allclose(out, out2, rtol=1e-10)
    # regression head: the last T blocks of output_step steps (end-aligned, like rhel.data's targets)
    reg, st = eqx.nn.make_with_state(HSSM)(
        C,
        2,
        task="regression",
        hidden=6,
        state_size=4,
        num_blocks=1,
        output_step=5,
        output_len=3,
        key=jax.random.key(8),
    )
    pred, _ = eqx.filter_jit(apply_batch)(eqx.nn.inference_mode(reg), st, x)
    assert pred.shape == (B, 3, 2) and bool(jnp.all(jnp.abs(pred) < 1))
    with pytest.raises(ValueError, match="dropout"):
        HSSM(C, 3, dropout=1.5, key=jax.random.key(0))
    with pytest.raises(ValueError, match="unknown unit kind"):
        HSSM(C, 3, unit="quadratic", key=jax.random.key(0))


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_feed_forward_in_chunks_equals_the_whole_sequence_at_once(p):
    """The block-wise feed-forward (its custom VJP, blocks of 8 steps over 37: the last block overlaps) computes the
    same outputs and gradients as plain autodiff of the whole sequence at once, with the same dropout masks."""
    from rhel.models._blocks import GLU
    from rhel.models._lean import FeedForwardConfig, feed_forward, feed_forward_block

    glu = GLU(6, 6, key=jax.random.key(0))
    y = jax.random.normal(jax.random.key(1), (37, 6))
    keys = None if p == 0 else tuple(jax.random.split(jax.random.key(3)))

    skip = jax.random.normal(jax.random.key(2), (37, 6))

    def whole(glu, y, skip):
        return jnp.sum(jnp.sin(skip + feed_forward_block(glu, y, keys, p, 0)))

    def chunked(glu, y, skip):
        return jnp.sum(jnp.sin(feed_forward(FeedForwardConfig(p, 8), glu, y, skip, keys)))

    assert abs(float(whole(glu, y, skip) - chunked(glu, y, skip))) <= 1e-12
    g1, g2 = (jax.grad(f, argnums=(0, 1, 2))(glu, y, skip) for f in (whole, chunked))
    assert float(jnp.linalg.norm(g2[2])) > 0  # the skip's gradient passes through
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2), strict=True):
        assert float(jnp.max(jnp.abs(a - b))) <= 1e-12
    if p:  # dropout really drops about p of the entries, and a step's mask does not depend on the block it is in
        from rhel.models._lean import dropout_per_step

        dropped = dropout_per_step(jnp.ones((400, 6)), p, keys[0], 0)
        assert 0.25 < float(jnp.mean(dropped == 0)) < 0.35
        np.testing.assert_array_equal(dropout_per_step(jnp.ones((5, 6)), p, keys[0], 100), dropped[100:105])
