"""``rhel gradcheck``: how close RHEL's gradients are to BPTT's, per block and per parameter, in float32 and float64.

One batch of the training data goes through an HSSM built exactly as ``rhel train`` builds it (the training
module's config, model and data functions are reused). The loss's gradient with respect to every parameter leaf is
computed with BPTT (the reference) and with RHEL (each estimator); for each leaf we report

* ``cosine``: ``<g_rhel, g_bptt> / (|g_rhel| |g_bptt|)``,
* ``norm_ratio``: ``|g_rhel| / |g_bptt|``,
* ``rel_error``: ``|g_rhel - g_bptt| / |g_bptt|``.

The float64 model is built first (``jax_enable_x64`` on); the float32 model is the same model cast to float32, run
on the same batch cast to float32, against a float32 BPTT. The dropout mask is drawn from a fixed key, identical
for all methods. The ``eps`` sweep repeats the comparison (all leaves together) over a grid of nudging strengths.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import numpy as np
from jaxtyping import PyTree

from rhel.data.core import Dataset
from rhel.gradients.methods import ESTIMATOR_METHODS, GRADIENT_METHODS, make_gradient
from rhel.models import HSSM
from rhel.training.config import TrainConfig

SCHEMA = "rhel.gradcheck/1"
PRECISIONS = ("float32", "float64")
DEFAULT_SWEEP = tuple(float(e) for e in np.logspace(-8, 0, 9))


def enable_x64() -> None:
    """Turn on double precision in this process (must happen before the arrays are created)."""
    import jax

    jax.config.update("jax_enable_x64", True)


def _leaf_name(path) -> tuple[str, str]:
    """``(block, parameter)`` for a key path of the model: ``("block 0", "unit.a_hat")``, ``("encoder", "weight")``."""
    import jax

    parts = jax.tree_util.keystr(path).lstrip(".").split(".")
    head = parts[0]
    if head.startswith("blocks["):
        index = head[len("blocks[") : -1]
        return f"block {index}", ".".join(parts[1:])
    return head, ".".join(parts[1:]) or head


def compare(rhel: np.ndarray, bptt: np.ndarray) -> dict[str, float]:
    """Cosine, norm ratio and relative error of one gradient against the reference (both flattened, real)."""
    a = np.asarray(rhel, dtype=np.float64).ravel()
    b = np.asarray(bptt, dtype=np.float64).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if nb == 0.0:
        same = na == 0.0
        return {"cosine": 1.0 if same else math.nan, "norm_ratio": 1.0 if same else math.inf,
                "rel_error": 0.0 if same else math.inf, "bptt_norm": nb, "rhel_norm": na}  # fmt: skip
    cos = float(a @ b) / (na * nb) if na > 0 else 0.0
    return {
        "cosine": cos,
        "norm_ratio": na / nb,
        "rel_error": float(np.linalg.norm(a - b)) / nb,
        "bptt_norm": nb,
        "rhel_norm": na,
    }


def _cast(tree: PyTree, dtype: Any) -> PyTree:
    import jax
    import jax.numpy as jnp

    def cast(x):
        if eqx.is_inexact_array(x) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree_util.tree_map(cast, tree)


@dataclasses.dataclass
class Problem:
    """A model, its BatchNorm state and one batch, in float64 (the float32 version is cast from it)."""

    config: TrainConfig
    model: HSSM
    state: eqx.nn.State
    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray | None
    seed: int

    def at(self, precision: str):
        import jax.numpy as jnp

        dtype = jnp.float32 if precision == "float32" else jnp.float64
        inputs = jnp.asarray(self.inputs, dtype)
        targets = jnp.asarray(self.targets)
        if jnp.issubdtype(targets.dtype, jnp.floating):
            targets = targets.astype(dtype)
        mask = None if self.mask is None else jnp.asarray(self.mask)
        return _cast(self.model, dtype), _cast(self.state, dtype), inputs, targets, mask


def make_problem(
    config: TrainConfig, *, batch_size: int = 4, seed: int | None = None, dataset: Dataset | None = None
) -> Problem:
    """Build the model (``rhel.training.experiment.build_model``) and take the first ``batch_size`` training examples
    (``rhel.training.experiment.load_dataset``). Enables x64."""
    enable_x64()
    import jax

    from rhel.training.experiment import build_model, load_dataset

    seed = config.seeds[0] if seed is None else seed
    if dataset is None:
        dataset = load_dataset(config, seed)
    model, state = build_model(config.model, dataset, key=jax.random.PRNGKey(seed))
    model, state = _cast(model, "float64"), _cast(state, "float64")
    split = dataset.train
    n = min(batch_size, int(np.asarray(split.inputs).shape[0]))
    inputs = np.asarray(split.inputs[:n], dtype=np.float64)
    targets = np.asarray(split.targets[:n])
    mask = None if split.mask is None else np.asarray(split.mask[:n], dtype=bool)
    return Problem(config, model, state, inputs, targets, mask, seed)


_GRAD_FNS: dict[Any, Any] = {}


def gradients(
    problem: Problem,
    precision: str,
    method: str,
    epsilon: float | None = None,
    resync_every: int | None = None,
    relative: bool = True,
) -> list[tuple]:
    """``[(block, parameter, gradient array)]`` of the batch loss for one method name (``bptt``, ``rhel``, ...);
    ``resync_every`` re-synchronises RHEL's echo (symmetric estimators; ignored by the others) and ``relative``
    scales ``epsilon`` as :class:`rhel.RHEL` does."""
    import jax
    import jax.numpy as jnp

    from rhel.models import batch_loss

    model, state, inputs, targets, mask = problem.at(precision)
    # eps travels as an array argument: one compilation serves every eps of a sweep; gradcheck measures the error
    # itself, so RHEL's contract checks warn rather than stop it
    epsilon = None if epsilon is None else jnp.asarray(epsilon, inputs.dtype)
    resync_every = resync_every if GRADIENT_METHODS[method].symmetric else None
    gradient = make_gradient(method, epsilon, relative, resync_every=resync_every, check="warn")
    key = jax.random.PRNGKey(problem.seed + 1)  # dropout mask: the same for every method
    if method not in _GRAD_FNS:

        def loss(model, state, inputs, targets, mask, key, gradient):
            return batch_loss(model, state, inputs, targets, key=key, gradient=gradient, mask=mask)[0]

        _GRAD_FNS[method] = eqx.filter_jit(eqx.filter_grad(loss))
    grads = _GRAD_FNS[method](model, state, inputs, targets, mask, key, gradient)
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(grads, eqx.is_inexact_array))[0]
    return [(*_leaf_name(path), np.asarray(g)) for path, g in leaves]


def effective_epsilon(problem: Problem, precision: str, estimator: str, epsilon: float | None) -> float:
    """The nudging strength RHEL uses (its default when ``epsilon`` is None) for this model and precision."""
    import jax.numpy as jnp

    gradient = make_gradient(ESTIMATOR_METHODS[estimator], epsilon)
    dtype = jnp.float32 if precision == "float32" else jnp.float64
    return float(gradient.epsilon_for(dtype, quadratic=problem.config.model.unit == "linear"))


def _clean(x: float) -> float | None:
    return None if (isinstance(x, float) and not math.isfinite(x)) else x


def _global(rhel: list[tuple], bptt: list[tuple]) -> dict[str, float]:
    return compare(np.concatenate([g.ravel() for *_, g in rhel]), np.concatenate([g.ravel() for *_, g in bptt]))


def run_gradcheck(
    problem: Problem,
    *,
    precisions: Sequence[str] = PRECISIONS,
    estimators: Sequence[str] = tuple(ESTIMATOR_METHODS),
    epsilon: float | None = None,
    sweep: Sequence[float] | None = None,
    resync_every: int | None = None,
) -> dict[str, Any]:
    """The full comparison as a JSON-ready dict (schema ``rhel.gradcheck/1``, documented in docs/reports.md).

    RHEL runs as the problem's config trains it: ``epsilon`` and ``resync_every`` default to the config's
    ``gradient.epsilon`` and ``gradient.resync_every`` (``None`` there: the core's default nudge, the plain echo), and
    the nudge is scaled as its ``gradient.relative_epsilon`` says."""
    from rhel.training.config import config_to_dict
    from rhel.training.experiment import environment_info

    settings = problem.config.gradient
    epsilon = settings.epsilon if epsilon is None else epsilon
    resync_every = settings.resync_every if resync_every is None else resync_every
    relative = settings.relative_epsilon
    results, summary, eps_used, sweep_rows, references = [], [], {}, [], {}
    for precision in precisions:
        reference = references[precision] = gradients(problem, precision, "bptt")
        eps_used[precision] = {}
        for estimator in estimators:
            method = ESTIMATOR_METHODS[estimator]
            # explicit eps (the default's value when None): the sweep's default point reuses this compilation
            eps_used[precision][estimator] = effective_epsilon(problem, precision, estimator, epsilon)
            rhel = gradients(problem, precision, method, eps_used[precision][estimator], resync_every, relative)
            rows = []
            for (block, param, g), (_, _, ref) in zip(rhel, reference, strict=True):
                row = {"precision": precision, "estimator": estimator, "block": block, "param": param,
                       "size": int(g.size), **compare(g, ref)}  # fmt: skip
                rows.append(row)
            worst = max(rows, key=lambda r: abs(r["norm_ratio"] - 1.0) if math.isfinite(r["norm_ratio"]) else math.inf)
            total = _global(rhel, reference)
            summary.append({
                "precision": precision,
                "estimator": estimator,
                "epsilon": eps_used[precision][estimator],
                "min_cosine": min(r["cosine"] for r in rows),
                "worst_norm_ratio": worst["norm_ratio"],
                "worst_norm_ratio_at": f"{worst['block']}/{worst['param']}",
                "max_rel_error": max(r["rel_error"] for r in rows),
                "global_cosine": total["cosine"],
                "global_rel_error": total["rel_error"],
            })  # fmt: skip
            results += rows
            if sweep:
                # the point marked ("default") is the eps measured above, whose gradients are reused: the config's
                # (or --epsilon), else the core's default
                measured = eps_used[precision][estimator]
                for eps in sorted({*map(float, sweep), measured}):
                    same = eps == measured
                    grads = rhel if same else gradients(problem, precision, method, eps, resync_every, relative)
                    total = _global(grads, reference)
                    sweep_rows.append({"precision": precision, "estimator": estimator, "epsilon": eps,
                                       "rel_error": total["rel_error"], "cosine": total["cosine"],
                                       "default": same})  # fmt: skip

    def clean(rows):
        return [{k: _clean(v) for k, v in r.items()} for r in rows]

    info = {"length": int(problem.inputs.shape[1]), "channels": int(problem.inputs.shape[2])}
    # what float32 itself reaches on this batch: BPTT's float32 gradient against its float64 one (a float32 RHEL
    # gradient cannot be expected closer to the float64 gradient than that)
    floor = None
    if "float32" in references and "float64" in references:
        total = _global(references["float32"], references["float64"])
        floor = {k: _clean(total[k]) for k in ("cosine", "norm_ratio", "rel_error")}
    return {
        "schema": SCHEMA,
        "config": config_to_dict(problem.config),
        "batch_size": int(problem.inputs.shape[0]),
        **info,
        "seed": problem.seed,
        "environment": environment_info(),
        "precisions": list(precisions),
        "estimators": list(estimators),
        "epsilon": eps_used,
        "relative_epsilon": relative,
        "resync_every": resync_every,
        "results": clean(results),
        "summary": clean(summary),
        "float32_bptt_vs_float64": floor,
        "eps_sweep": clean(sweep_rows) if sweep else None,
    }


# ---------------------------------------------------------------------------------------------- text


def format_table(report: dict[str, Any]) -> str:
    """One table per precision: rows (block, parameter), columns cosine / norm ratio / relative error per
    estimator; then the summary."""
    lines = []
    estimators = report["estimators"]
    index = {(r["precision"], r["estimator"], r["block"], r["param"]): r for r in report["results"]}
    for precision in report["precisions"]:
        eps = ", ".join(f"{e} {report['epsilon'][precision][e]:.3g}" for e in estimators)
        how = "" if report.get("relative_epsilon", True) else " (absolute: times the loss gradient)"
        resync = f"; echo re-synchronised every {report['resync_every']} steps" if report.get("resync_every") else ""
        lines.append(f"{precision} (RHEL vs BPTT; eps{how}: {eps}{resync})")
        header = f"{'block':<9} {'parameter':<18} " + " ".join(f"{e[:10] + ' cos':>15} {'ratio':>9} {'rel.err':>8}"
                                                                for e in estimators)  # fmt: skip
        lines += [header, "-" * len(header)]
        keys = dict.fromkeys((r["block"], r["param"]) for r in report["results"] if r["precision"] == precision)
        for block, param in keys:
            cells = []
            for e in estimators:
                r = index[(precision, e, block, param)]
                cells.append(f"{_fmt(r['cosine'], '.9f'):>15} {_fmt(r['norm_ratio'], '.6f'):>9} "
                             f"{_fmt(r['rel_error'], '.1e'):>8}")  # fmt: skip
            lines.append(f"{block:<9} {param[:18]:<18} " + " ".join(cells))
        lines.append("")
    lines.append("summary (per precision and estimator, over all parameter leaves)")
    header = (f"{'precision':<9} {'estimator':<11} {'eps':>8} {'min cos':>13} {'worst ratio':>12} "
              f"{'max rel.err':>11} {'global rel.err':>14}  worst at")  # fmt: skip
    lines += [header, "-" * len(header)]
    for s in report["summary"]:
        lines.append(
            f"{s['precision']:<9} {s['estimator']:<11} {s['epsilon']:>8.2g} {_fmt(s['min_cosine'], '.10f'):>13} "
            f"{_fmt(s['worst_norm_ratio'], '.8f'):>12} {_fmt(s['max_rel_error'], '.2e'):>11} "
            f"{_fmt(s['global_rel_error'], '.2e'):>14}  {s['worst_norm_ratio_at']}"
        )
    floor = report.get("float32_bptt_vs_float64")
    if floor is not None:
        lines.append(
            f"float32 BPTT vs float64 BPTT (what float32 itself reaches here): global rel.err "
            f"{_fmt(floor['rel_error'], '.2e')}, cos {_fmt(floor['cosine'], '.10f')}"
        )
    return "\n".join(lines) + "\n"


def _fmt(x: float | None, spec: str) -> str:
    return "nan" if x is None else format(x, spec)
