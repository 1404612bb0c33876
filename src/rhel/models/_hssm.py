"""HSSM: linear encoder → N HSSM blocks → task head.

RHEL chains through the blocks (the paper's Algorithm 1) without any code here: each HRU's custom VJP returns the
gradient with respect to its input sequence, and JAX autodiff carries it through the feed-forward parts to the HRU
below. The gradient method is an object (``rhel.RHEL()``, ``rhel.BPTT()``, ...) passed at call time, one for all
blocks; it never changes the forward output.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray, Scalar

from rhel.gradients import AbstractGradient
from rhel.models._blocks import HSSMBlock, time_channel
from rhel.models._heads import ClassificationHead, RegressionHead
from rhel.units import LinearHRU, NonlinearHRU

#: The name of the vmapped batch axis over which BatchNorm takes its statistics.
BATCH_AXIS = "batch"

UnitKind = Literal["linear", "nonlinear"]


def make_unit(
    kind: UnitKind | Callable[..., Any], in_size: int, state_size: int, *, key: PRNGKeyArray, **options: Any
) -> Any:
    """Build one HRU: ``"linear"`` → :class:`rhel.LinearHRU`, ``"nonlinear"`` → :class:`rhel.NonlinearHRU`, or any
    callable ``(in_size, state_size, *, key, **options)`` returning a unit ``u (L, H) -> y (L, H)``."""
    if callable(kind):
        return kind(in_size, state_size, key=key, **options)
    classes = {"linear": LinearHRU, "nonlinear": NonlinearHRU}
    if kind not in classes:
        raise ValueError(f"unknown unit kind {kind!r}; expected one of {sorted(classes)} or a callable")
    return classes[kind](in_size=in_size, state_size=state_size, key=key, **options)


class HSSM(eqx.Module):
    """A Hamiltonian state-space model on one sequence.

    Build it with its BatchNorm state, ``model, state = eqx.nn.make_with_state(HSSM)(...)``, and run it on a batch
    with :func:`apply_batch` (or ``jax.vmap(model, axis_name=BATCH_AXIS, ...)``). Use ``eqx.nn.inference_mode`` for
    evaluation: dropout off, BatchNorm on its running statistics.

    **Arguments:**

    - `in_size`: input channels (before the optional time channel).
    - `out_size`: classes (classification) or output dimension (regression).
    - `task`: ``"classification"`` (mean over time → linear → log-softmax) or ``"regression"`` (every
      `output_step`-th step → linear → tanh).
    - `hidden`, `state_size`, `num_blocks`: H, P and the number of blocks.
    - `unit`: ``"linear"``, ``"nonlinear"`` or a unit factory (see :func:`make_unit`); `unit_options` are passed to it
      (e.g. ``complex_state``, ``train_step`` for linear HRUs, ``step`` for nonlinear ones).
    - `time_channel`: concatenate ``t / L`` to the inputs.
    - `dropout`: dropout probability after GELU and after the GLU.
    - `output_step`, `output_len`: (regression) read the last `output_len` blocks of `output_step` steps (see
      :class:`RegressionHead`).
    - `remat_ff`: recompute the feed-forward parts in the backward pass instead of storing them.
    - `key`: the PRNG key for the initialisation (keyword only).
    """

    encoder: eqx.nn.Linear
    blocks: tuple[HSSMBlock, ...]
    head: ClassificationHead | RegressionHead
    time_channel: bool = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        *,
        task: Literal["classification", "regression"] = "classification",
        hidden: int = 64,
        state_size: int = 256,
        num_blocks: int = 6,
        unit: UnitKind | Callable[..., Any] = "linear",
        unit_options: Mapping[str, Any] | None = None,
        time_channel: bool = False,
        dropout: float = 0.05,
        output_step: int = 1,
        output_len: int | None = None,
        remat_ff: bool = True,
        dtype=None,
        key: PRNGKeyArray,
    ):
        sizes = {"in_size": in_size, "out_size": out_size, "hidden": hidden, "state_size": state_size,
                 "num_blocks": num_blocks}  # fmt: skip
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"HSSM {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if task not in ("classification", "regression"):
            raise ValueError(f"unknown task {task!r}; expected 'classification' or 'regression'")
        k_enc, k_head, *k_blocks = jax.random.split(key, 2 + num_blocks)
        options = dict(unit_options or {})
        if dtype is not None and isinstance(unit, str):
            options.setdefault("dtype", dtype)
        self.time_channel = time_channel
        self.encoder = eqx.nn.Linear(in_size + int(time_channel), hidden, dtype=dtype, key=k_enc)
        blocks = []
        for k in k_blocks:
            k_unit, k_ff = jax.random.split(k)
            hru = make_unit(unit, hidden, state_size, key=k_unit, **options)
            blocks.append(
                HSSMBlock(hidden, hru, dropout=dropout, axis_name=BATCH_AXIS, remat_ff=remat_ff, dtype=dtype, key=k_ff)
            )
        self.blocks = tuple(blocks)
        if task == "classification":
            self.head = ClassificationHead(hidden, out_size, dtype=dtype, key=k_head)
        else:
            self.head = RegressionHead(
                hidden, out_size, output_step=output_step, output_len=output_len, dtype=dtype, key=k_head
            )

    @property
    def task(self) -> str:
        return self.head.task

    def __call__(
        self,
        x: Float[Array, "L C"],
        state: eqx.nn.State,
        *,
        key: PRNGKeyArray | None = None,
        gradient: AbstractGradient | None = None,
        mask: Bool[Array, " L"] | None = None,
    ) -> tuple[Array, eqx.nn.State]:
        channels = self.encoder.in_features - int(self.time_channel)
        if x.ndim != 2 or x.shape[-1] != channels:
            raise ValueError(
                f"HSSM input must have shape (length, {channels}) (in_size={channels} channels), got {x.shape}"
            )
        if self.time_channel:
            x = time_channel(x)
        h = jax.vmap(self.encoder)(x)
        keys = [None] * len(self.blocks) if key is None else list(jax.random.split(key, len(self.blocks)))
        for block, k in zip(self.blocks, keys, strict=True):
            h, state = block(h, state, key=k, gradient=gradient)
        return self.head(h, mask), state


def apply_batch(
    model: HSSM,
    state: eqx.nn.State,
    inputs: Float[Array, "B L C"],
    *,
    key: PRNGKeyArray | None = None,
    gradient: AbstractGradient | None = None,
    mask: Bool[Array, "B L"] | None = None,
) -> tuple[Array, eqx.nn.State]:
    """Run ``model`` on a batch (BatchNorm statistics over it); one dropout key per sequence."""
    batch = inputs.shape[0]
    keys = None if key is None else jax.random.split(key, batch)

    def one(x, m, k):
        return model(x, state, key=k, gradient=gradient, mask=m)

    return jax.vmap(one, in_axes=(0, 0, 0), out_axes=(0, None), axis_name=BATCH_AXIS)(inputs, mask, keys)


def batch_loss(
    model: HSSM,
    state: eqx.nn.State,
    inputs: Float[Array, "B L C"],
    targets: Array,
    *,
    key: PRNGKeyArray | None = None,
    gradient: AbstractGradient | None = None,
    mask: Bool[Array, "B L"] | None = None,
) -> tuple[Scalar, tuple[Scalar, eqx.nn.State]]:
    """Mean loss over a batch, with ``(mean metric, new state)`` as auxiliary output (for ``eqx.filter_value_and_grad
    (..., has_aux=True)``)."""
    predictions, state = apply_batch(model, state, inputs, key=key, gradient=gradient, mask=mask)
    losses = jax.vmap(model.head.loss)(predictions, targets)
    metrics = jax.vmap(model.head.metric)(predictions, targets)
    return jnp.mean(losses), (jnp.mean(metrics), state)
