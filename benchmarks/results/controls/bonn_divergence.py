"""Bonn EEG: train the study config with RHEL and BPTT side by side from the same start, batches and dropout masks,
and print how far apart their parameters are after each step (issue 14, point 5; RESULTS.md, Bonn EEG note).

    PYTHONPATH=src python benchmarks/results/controls/bonn_divergence.py float64 60   # from the repository root
    PYTHONPATH=src python benchmarks/results/controls/bonn_divergence.py float32 30

Data from DATA_DIR (default ../shared/data).
"""

import dataclasses
import os
import sys

import equinox as eqx
import jax
import numpy as np


def main(precision: str, steps: int) -> None:
    f64 = precision == "float64"
    jax.config.update("jax_enable_x64", f64)
    from rhel.training.config import load_config
    from rhel.training.experiment import (
        BatchOrder,
        build_model,
        load_dataset,
        make_optimizer,
        split_arrays,
        train_step_for,
    )

    config = load_config("datasets/bonn-eeg-linear")
    data = dataclasses.replace(config.data, data_dir=os.environ.get("DATA_DIR", "../shared/data"))
    config = dataclasses.replace(config, float64=f64, data=data)
    dataset = load_dataset(config, 0)
    train = split_arrays(dataset.train, np.float64 if f64 else np.float32)
    init_key, data_key, dropout_key = jax.random.split(jax.random.PRNGKey(0), 3)  # as rhel train, seed 0
    model, state = build_model(config.model, dataset, key=init_key)
    if f64:
        model = jax.tree_util.tree_map(lambda a: a.astype(np.float64) if eqx.is_inexact_array(a) else a, model)
    order = BatchOrder(data_key, train[0].shape[0], config.optim.batch_size)
    runs = {}
    for method in ("rhel", "bptt"):
        one = dataclasses.replace(config, gradient=dataclasses.replace(config.gradient, methods=(method,)))
        opt_state = make_optimizer(config.optim).init(eqx.filter(model, eqx.is_inexact_array))
        runs[method] = [train_step_for(one), model, state, opt_state]

    def flat(m):
        leaves = jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_inexact_array))
        return np.concatenate([np.ravel(np.asarray(leaf)) for leaf in leaves])

    for s in range(steps):
        idx = order.indices(s)
        key = jax.random.fold_in(dropout_key, s)
        losses = {}
        for method, run in runs.items():
            new = run[0](run[1], run[2], run[3], train[0][idx], train[1][idx], None, key)
            run[1:] = new[:3]
            losses[method] = float(new[3])
        a, b = flat(runs["rhel"][1]), flat(runs["bptt"][1])
        if s < 10 or s % 10 == 9:
            rel = np.linalg.norm(a - b) / np.linalg.norm(b)
            print(
                f"step {s + 1}: loss rhel {losses['rhel']:.6f} bptt {losses['bptt']:.6f}  "
                f"params max|diff| {np.max(np.abs(a - b)):.2e}  rel {rel:.2e}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
