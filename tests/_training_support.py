"""Test helpers for the model and training tests (never shipped).

``tiny_dataset`` builds a small in-memory classification/regression dataset with the ``rhel.data`` shape
(``info``, ``train``/``val``/``test`` splits of ``inputs``, ``targets``, ``mask``). ``core_or_standin`` installs a
minimal stand-in HRU and gradient-method classes on the ``rhel`` namespace when the core has not been merged yet, so
the loop can be exercised; with the core present it does nothing.
"""

from __future__ import annotations

from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import rhel


class StandInHRU(eqx.Module):
    """A diagonal linear recurrence with a readout and a skip; ignores the gradient method."""

    decay: jax.Array
    b: jax.Array
    c: jax.Array
    d: jax.Array

    def __init__(self, in_size, state_size, *, key, **_options):
        k1, k2, k3 = jax.random.split(key, 3)
        self.decay = jax.random.uniform(k1, (state_size,), minval=0.5, maxval=0.95)
        self.b = jax.random.normal(k2, (state_size, in_size)) / np.sqrt(in_size)
        self.c = jax.random.normal(k3, (in_size, state_size)) / np.sqrt(state_size)
        self.d = jnp.ones(in_size)

    def __call__(self, u, gradient=None):
        def step(h, x):
            h = self.decay * h + self.b @ x
            return h, self.c @ h

        return jax.lax.scan(step, jnp.zeros(self.decay.shape, u.dtype), u)[1] + self.d * u


class _Method(eqx.Module):
    epsilon: float | None = None
    estimator: str = "central"


def core_or_standin(monkeypatch) -> bool:
    """True if the real core is present; otherwise patch stand-ins onto ``rhel`` and return False."""
    if hasattr(rhel, "LinearHRU"):
        return True
    for name in ("LinearHRU", "NonlinearHRU"):
        monkeypatch.setattr(rhel, name, lambda in_size, state_size, *, key, **o: StandInHRU(in_size, state_size, key=key), raising=False)
    for name in ("BPTT", "CheckpointedBPTT", "RHEL"):
        monkeypatch.setattr(rhel, name, _Method, raising=False)
    return False


def tiny_dataset(*, n=48, length=16, channels=2, classes=2, task="classification", seed=0, output_step=4):
    """Class = sign of the mean of channel 0 (or, for regression, a running mean as the target)."""
    rng = np.random.default_rng(seed)

    def split(m):
        x = rng.normal(size=(m, length, channels)).astype(np.float32)
        if task == "classification":
            y = (x[:, :, 0].mean(axis=1) > 0).astype(np.int64) % classes
        else:
            means = np.cumsum(x[:, :, :1], axis=1) / np.arange(1, length + 1)[None, :, None]
            y = np.tanh(means[:, output_step - 1 :: output_step]).astype(np.float32)
        return SimpleNamespace(inputs=x, targets=y, mask=None)

    info = SimpleNamespace(
        name="tiny", task=task, num_classes=classes if task == "classification" else None,
        output_dim=1 if task == "regression" else None, length=length, channels=channels,
    )  # fmt: skip
    return SimpleNamespace(info=info, train=split(n), val=split(n // 2), test=split(n // 2))
