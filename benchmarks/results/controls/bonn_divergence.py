"""Bonn EEG: train the study config with RHEL and BPTT side by side from the same start, same batches and dropout,
# usage (repository root): PYTHONPATH=src python benchmarks/results/controls/bonn_divergence.py float64|float32 STEPS
and print how far the parameters part, step by step (float64 or float32)."""
import os, sys, dataclasses
import jax, numpy as np, equinox as eqx
f64 = sys.argv[1] == "float64"; steps = int(sys.argv[2])
if f64: jax.config.update("jax_enable_x64", True)
from rhel.training.config import load_config
from rhel.training.experiment import load_dataset, build_model, make_optimizer, split_arrays, train_step_for, BatchOrder
config = load_config("datasets/bonn-eeg-linear")
config = dataclasses.replace(config, float64=f64, data=dataclasses.replace(config.data, data_dir=os.environ.get("DATA_DIR", "../shared/data")))
seed = 0
dataset = load_dataset(config, seed)
dtype = np.float64 if f64 else np.float32
tr = split_arrays(dataset.train, dtype)
init_key, data_key, dropout_key = jax.random.split(jax.random.PRNGKey(seed), 3)
model, state = build_model(config.model, dataset, key=init_key)
if f64: model = jax.tree_util.tree_map(lambda a: a.astype(np.float64) if eqx.is_inexact_array(a) else a, model)
opt = make_optimizer(config.optim)
order = BatchOrder(data_key, tr[0].shape[0], config.optim.batch_size)
runs = {}
for m in ("rhel", "bptt"):
    c = dataclasses.replace(config, gradient=dataclasses.replace(config.gradient, methods=(m,)))
    runs[m] = [train_step_for(c), model, state, make_optimizer(config.optim).init(eqx.filter(model, eqx.is_inexact_array))]
def flat(mo): return np.concatenate([np.ravel(np.asarray(l)) for l in jax.tree_util.tree_leaves(eqx.filter(mo, eqx.is_inexact_array))])
for s in range(steps):
    idx = order.indices(s); x, y = tr[0][idx], tr[1][idx]
    key = jax.random.fold_in(dropout_key, s)
    losses = {}
    for m, r in runs.items():
        new = r[0](r[1], r[2], r[3], x, y, None, key)
        r[1], r[2], r[3] = new[0], new[1], new[2]; losses[m] = float(new[3])
    a, b = flat(runs["rhel"][1]), flat(runs["bptt"][1])
    if s < 10 or s % 10 == 9:
        print(f"step {s+1}: loss rhel {losses['rhel']:.6f} bptt {losses['bptt']:.6f}  params max|diff| {np.max(np.abs(a-b)):.2e}  rel {np.linalg.norm(a-b)/np.linalg.norm(b):.2e}", flush=True)
