"""Shared test helpers (imported by the test modules)."""

import jax
import jax.numpy as jnp


def rel_err(a, b):
    """Relative error ||a - b|| / ||b|| (0 when both vanish)."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    nb = jnp.linalg.norm(b.ravel())
    na = jnp.linalg.norm((a - b).ravel())
    return float(jnp.where(nb > 0, na / jnp.where(nb > 0, nb, 1), na))


def tree_rel_errs(a, b):
    """Leaf-wise relative errors of two pytrees of the same structure, as a flat list."""
    return jax.tree_util.tree_leaves(jax.tree_util.tree_map(rel_err, a, b))
