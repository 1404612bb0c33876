"""Task heads of an HSSM: they turn the last block's sequence into a prediction, and score it."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, Scalar


class ClassificationHead(eqx.Module):
    """Mean over time (over the unmasked steps when a mask is given) → linear → log-softmax.

    The loss is the cross-entropy ``-log p[target]``; the metric is the accuracy (1 when the arg-max is the target).
    """

    linear: eqx.nn.Linear

    task: ClassVar[str] = "classification"
    metric_name: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, hidden: int, num_classes: int, *, dtype=None, key: PRNGKeyArray):
        self.linear = eqx.nn.Linear(hidden, num_classes, dtype=dtype, key=key)

    def __call__(self, x: Float[Array, "L H"], mask: Bool[Array, " L"] | None = None) -> Float[Array, " C"]:
        if mask is None:
            pooled = jnp.mean(x, axis=0)
        else:
            weights = mask.astype(x.dtype)
            pooled = weights @ x / jnp.maximum(jnp.sum(weights), 1.0)
        return jax.nn.log_softmax(self.linear(pooled))

    @staticmethod
    def loss(prediction: Float[Array, " C"], target: Int[Array, ""]) -> Scalar:
        return -prediction[target]

    @staticmethod
    def metric(prediction: Float[Array, " C"], target: Int[Array, ""]) -> Scalar:
        return (jnp.argmax(prediction) == target).astype(prediction.dtype)


class RegressionHead(eqx.Module):
    """Every ``output_step``-th step (``x[output_step-1::output_step]``) → linear → tanh; MSE loss and metric.

    The targets of a sequence of length ``L`` have ``L // output_step`` rows.
    """

    linear: eqx.nn.Linear
    output_step: int = eqx.field(static=True)

    task: ClassVar[str] = "regression"
    metric_name: ClassVar[str] = "mse"
    higher_is_better: ClassVar[bool] = False

    def __init__(self, hidden: int, out_size: int, *, output_step: int = 1, dtype=None, key: PRNGKeyArray):
        if output_step < 1:
            raise ValueError(f"output_step must be a positive integer, got {output_step}")
        self.linear = eqx.nn.Linear(hidden, out_size, dtype=dtype, key=key)
        self.output_step = output_step

    def __call__(self, x: Float[Array, "L H"], mask: Bool[Array, " L"] | None = None) -> Float[Array, "T O"]:
        del mask  # every output step is scored; a mask has no meaning for a per-step target here
        picked = x[self.output_step - 1 :: self.output_step]
        return jnp.tanh(jax.vmap(self.linear)(picked))

    @staticmethod
    def loss(prediction: Float[Array, "T O"], target: Float[Array, "T O"]) -> Scalar:
        return jnp.mean((prediction - target) ** 2)

    metric = loss
