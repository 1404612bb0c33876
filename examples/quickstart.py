"""Train one linear HRU on a toy regression with RHEL, and compare RHEL's gradient with BPTT's.

Run: python examples/quickstart.py   (about 20 s on 2 CPU cores)
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import rhel

# A toy long-memory regression: the target is the input delayed by 20 steps and smoothed.
key_data, key_unit = jax.random.split(jax.random.key(0))
u = jax.random.normal(key_data, (8, 200, 2))  # (batch, length, channels)
kernel = jnp.ones(5) / 5
target = jax.vmap(jax.vmap(lambda x: jnp.convolve(x, kernel, mode="same"), in_axes=1, out_axes=1))(
    jnp.roll(u, 20, axis=1).at[:, :20].set(0.0)
)

unit = rhel.LinearHRU(in_size=2, state_size=32, key=key_unit)


def loss(unit, u, target, gradient):
    y = jax.vmap(lambda x: unit(x, gradient=gradient))(u)
    return jnp.mean((y - target) ** 2)


grad = eqx.filter_jit(eqx.filter_value_and_grad(loss))

# 1. RHEL's gradient equals BPTT's (exactly, for a linear HRU)
_, g_rhel = grad(unit, u, target, rhel.RHEL())
_, g_bptt = grad(unit, u, target, rhel.BPTT())
flat_rhel = jnp.concatenate([x.ravel() for x in jax.tree_util.tree_leaves(g_rhel)])
flat_bptt = jnp.concatenate([x.ravel() for x in jax.tree_util.tree_leaves(g_bptt)])
cosine = jnp.dot(flat_rhel, flat_bptt) / (jnp.linalg.norm(flat_rhel) * jnp.linalg.norm(flat_bptt))
rel = jnp.linalg.norm(flat_rhel - flat_bptt) / jnp.linalg.norm(flat_bptt)
print(f"RHEL vs BPTT gradient: cosine {float(cosine):.9f}, relative error {float(rel):.2e}")

# 2. Train with RHEL (three forward passes, no stored trajectory)
optimizer = optax.adam(3e-3)
state = optimizer.init(eqx.filter(unit, eqx.is_inexact_array))


@eqx.filter_jit
def train_step(unit, state):
    value, g = eqx.filter_value_and_grad(loss)(unit, u, target, rhel.RHEL())
    updates, state = optimizer.update(g, state, eqx.filter(unit, eqx.is_inexact_array))
    return eqx.apply_updates(unit, updates), state, value


first = None
for _ in range(300):
    unit, state, value = train_step(unit, state)
    first = float(value) if first is None else first
print(f"training loss with RHEL: {first:.4f} -> {float(value):.4f}")
