"""``rhel evaluate`` and ``rhel predict``: use a trained run folder (see :mod:`rhel.training.artifacts`).

``rhel evaluate RUN_DIR`` re-evaluates the run's best model on a split of its dataset (loaded with the run's seed
and options, or another ``--dataset``) exactly as training evaluated it, prints the metric and writes
``RUN_DIR/evaluation-<dataset>-<split>.json``. ``rhel predict RUN_DIR --inputs FILE --out preds.npz`` runs the model
on the sequences of a ``.npz``, UCR ``.tsv``/``.txt`` or UEA ``.ts``/``.arff`` file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from rhel.data.core import DataError


def register(subparsers) -> None:
    """Add the ``evaluate`` and ``predict`` sub-commands."""
    e = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run's best model on a split of its dataset (or another one)",
        description="Load RUN_DIR's best model and evaluate it; prints the loss and metric and writes "
        "RUN_DIR/evaluation-<dataset>-<split>.json.",
    )
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `rhel train`")
    e.add_argument("--dataset", metavar="NAME|PATH", help="another dataset (default: the run's, with its options)")
    e.add_argument("--data-dir", metavar="DIR", help="where datasets are cached / found (default: the run's)")
    e.add_argument("--split", choices=("train", "val", "test"), default="test", help="default: test")
    e.set_defaults(func=evaluate_command)

    p = subparsers.add_parser(
        "predict",
        help="predict with a trained run's best model on the sequences of a file",
        description="Run RUN_DIR's best model on FILE (.npz with 'x' [and 'mask', 'y'], UCR .tsv/.txt, UEA .ts/.arff) "
        "and write class probabilities and labels (classification) or outputs (regression) to OUT.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `rhel train`")
    p.add_argument("--inputs", required=True, metavar="FILE", help="the sequences to predict on")
    p.add_argument("--out", required=True, metavar="FILE", help="the .npz file to write")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per forward pass (default: the run's)")
    p.set_defaults(func=predict_command)


def _load(run_dir: str, command: str):
    from rhel.training.artifacts import ModelFileError, load_run

    try:
        return load_run(run_dir)
    except ModelFileError as error:
        print(f"rhel {command}: {error}", file=sys.stderr)
        return None


def evaluate_command(args: argparse.Namespace) -> int:
    from rhel.data.registry import load
    from rhel.training.experiment import evaluate, split_arrays

    run = _load(args.run_dir, "evaluate")
    if run is None:
        return 2
    if run.config is None:
        print(f"rhel evaluate: {args.run_dir}: no config.json; give a run folder of `rhel train`", file=sys.stderr)
        return 2
    data = run.config.data
    name = args.dataset or data.name
    options = data.options if args.dataset in (None, data.name) else {}
    try:
        dataset = load(name, data_dir=args.data_dir or data.data_dir, seed=run.config.seeds[0], **options)
    except DataError as error:
        print(f"rhel evaluate: {error}", file=sys.stderr)
        return 2
    if dataset.info.channels != run.hyperparameters["in_size"]:
        print(
            f"rhel evaluate: dataset {name!r} has {dataset.info.channels} channel(s), the model takes "
            f"{run.hyperparameters['in_size']}; give a dataset of the same shape",
            file=sys.stderr,
        )
        return 2
    split = getattr(dataset, args.split)
    loss, metric = evaluate(run.model, run.state, split_arrays(split, run.dtype), run.config.optim.eval_batch_size)
    metric_name = run.model.head.metric_name
    record = {
        "run_dir": str(run.run_dir),
        "dataset": dataset.info.name,
        "split": args.split,
        "examples": len(split),
        "metric": metric_name,
        f"{args.split}_loss": loss,
        f"{args.split}_{metric_name}": metric,
    }
    out = Path(args.run_dir) / f"evaluation-{Path(dataset.info.name).name}-{args.split}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"{dataset.info.name} {args.split} ({len(split)} examples): {metric_name} {metric!r}, loss {loss!r}\n"
        f"wrote {out}"
    )
    return 0


def predict_command(args: argparse.Namespace) -> int:
    from rhel.training.artifacts import read_inputs

    run = _load(args.run_dir, "predict")
    if run is None:
        return 2
    batch_size = args.batch_size or (run.config.optim.eval_batch_size if run.config is not None else 256)
    try:
        inputs, mask, targets = read_inputs(args.inputs, run.classes)
        predictions = run.predict(inputs, mask, batch_size=batch_size)
    except DataError as error:
        print(f"rhel predict: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **predictions)
    summary = f"{inputs.shape[0]} sequence(s) from {args.inputs}"
    if targets is not None and "labels" in predictions and np.ndim(targets) == 1:
        summary += f"; accuracy against its labels {float(np.mean(predictions['labels'] == targets))!r}"
    elif targets is not None and "outputs" in predictions and np.shape(targets) == predictions["outputs"].shape:
        summary += f"; mse against its targets {float(np.mean((predictions['outputs'] - targets) ** 2))!r}"
    print(f"{summary}\nwrote {out} ({', '.join(predictions)})")
    return 0
