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
        if not jnp.issubdtype(jnp.result_type(target), jnp.integer):
            raise TypeError(
                f"classification targets must be integer class labels, got dtype {jnp.result_type(target)}; "
                "pass labels as integers in [0, num_classes), not floats or one-hot vectors"
            )
        return -prediction[target]

    @staticmethod
    def metric(prediction: Float[Array, " C"], target: Int[Array, ""]) -> Scalar:
        return (jnp.argmax(prediction) == target).astype(prediction.dtype)


class RegressionHead(eqx.Module):
    """Read the sequence every ``output_step`` steps → linear → tanh; MSE loss and metric.

    The ``T`` outputs are the states at the ends of the last ``T`` blocks of ``output_step`` steps: output ``k`` is
    read at step ``L - 1 - (T - 1 - k) * output_step`` (the convention of ``rhel.data``'s regression targets). With
    ``output_len=None``, ``T = L // output_step``, and when ``L`` is a multiple of ``output_step`` this is the paper's
    ``x[output_step-1::output_step]``.
    """

    linear: eqx.nn.Linear
    output_step: int = eqx.field(static=True)
    output_len: int | None = eqx.field(static=True)

    task: ClassVar[str] = "regression"
    metric_name: ClassVar[str] = "mse"
    higher_is_better: ClassVar[bool] = False

    def __init__(
        self,
        hidden: int,
        out_size: int,
        *,
        output_step: int = 1,
        output_len: int | None = None,
        dtype=None,
        key: PRNGKeyArray,
    ):
        if output_step < 1:
            raise ValueError(f"output_step must be a positive integer, got {output_step}")
        if output_len is not None and output_len < 1:
            raise ValueError(f"output_len must be a positive integer, got {output_len}")
        self.linear = eqx.nn.Linear(hidden, out_size, dtype=dtype, key=key)
        self.output_step = output_step
        self.output_len = output_len

    def __call__(self, x: Float[Array, "L H"], mask: Bool[Array, " L"] | None = None) -> Float[Array, "T O"]:
        del mask  # every output step is scored
        length, step = x.shape[0], self.output_step
        count = length // step if self.output_len is None else self.output_len
        first = length - 1 - (count - 1) * step
        if first < 0 or count < 1:
            raise ValueError(f"{count} outputs every {step} steps do not fit in a sequence of length {length}")
        picked = x[first::step][:count]
        return jnp.tanh(jax.vmap(self.linear)(picked))

    @staticmethod
    def loss(prediction: Float[Array, "T O"], target: Float[Array, "T O"]) -> Scalar:
        return jnp.mean((prediction - target) ** 2)

    metric = loss
