"""Collect finished runs into tables (mean ± std over seeds) and plot their training curves.

A run directory is recognised by its ``final.json`` (written by :func:`rhel.training.loop.train_run` when a run ends);
its curves come from ``metrics.jsonl`` beside it. Rows are grouped by dataset × model (unit) × gradient method ×
settings: runs of one dataset, unit and method whose ``config.json`` differ in other settings (a learning-rate or ε
sweep) form one row each, labelled with the settings that differ (``Lin RHEL (lr=0.01)``); run folders without a
``config.json`` (older ones) group as before. A single seed is shown as a value, without a standard deviation.
The standard deviation is the population one (``ddof=0``) unless asked otherwise: the LinOSS pipeline that the
paper's code forks reproduces its published numbers with ``ddof=0``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rhel.figures import pyplot, save_figure
from rhel.gradients.methods import METHOD_NAMES, method_label
from rhel.training.faults import RunFileError, failures_markdown, find_failures, notice, read_json, read_jsonl
from rhel.training.loop import CONFIG_FILE, FINAL_FILE, METRICS_FILE
from rhel.training.runs import run_settings, setting_labels

#: The keys of ``final.json`` the tables need; a file without them is reported as corrupt and skipped.
FINAL_KEYS = ("dataset", "unit", "gradient", "seed", "metric", "test_metric")

#: How units are written in tables (methods: :func:`rhel.gradients.methods.method_label`).
UNIT_LABELS = {"linear": "Lin", "nonlinear": "Nonlin"}


@dataclass(frozen=True)
class Row:
    """One dataset × unit × gradient method × settings, over its seeds; ``setting`` labels the settings that
    differ from the other rows of the dataset, unit and method (``""`` when none do)."""

    dataset: str
    unit: str
    gradient: str
    metric: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]
    mean: float
    std: float
    ddof: int
    setting: str = ""

    @property
    def label(self) -> str:
        """``"Lin RHEL"``: the unit's and the method's labels, and the setting (``"Lin RHEL (lr=0.01)"``)."""
        return _label(self.unit, self.gradient, self.setting)


def _label(unit: str, gradient: str, setting: str = "") -> str:
    base = f"{UNIT_LABELS.get(unit, unit)} {method_label(gradient)}"
    return f"{base} ({setting})" if setting else base


def _settings_of(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / CONFIG_FILE
    try:
        return run_settings(json.loads(path.read_text())) if path.is_file() else None
    except (ValueError, TypeError, AttributeError):
        return None  # an unreadable config: the run is grouped as an old run without one


def find_runs(paths: list[str | Path]) -> list[dict[str, Any]]:
    """The ``final.json`` records under ``paths`` (searched recursively), each with its ``run_dir``, its
    ``settings`` (from ``config.json``; ``None`` for older run folders) and its ``setting`` label added; a corrupt
    ``final.json`` is named in a notice and its run skipped."""
    runs = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"no such run directory: {root}")
        for dirpath, _dirs, files in os.walk(root):
            if FINAL_FILE in files:
                try:
                    record = read_json(Path(dirpath) / FINAL_FILE, FINAL_KEYS)
                except RunFileError as error:
                    notice(f"skipping this run: {error}")
                    continue
                record["run_dir"] = str(dirpath)
                record["settings"] = _settings_of(Path(dirpath))
                runs.append(record)
    families: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        families[(run["dataset"], run["unit"], run["gradient"])].append(run)
    for members in families.values():
        for run, label in zip(members, setting_labels(m["settings"] for m in members), strict=True):
            run["setting"] = label
    return sorted(runs, key=lambda r: (r["dataset"], r["unit"], r["gradient"], r["setting"], r["seed"]))


def _order(gradient: str) -> int:
    return METHOD_NAMES.index(gradient) if gradient in METHOD_NAMES else len(METHOD_NAMES)


def aggregate(runs: list[dict[str, Any]], *, ddof: int = 0) -> list[Row]:
    """Group runs by dataset × unit × gradient method × setting label (see :func:`find_runs`); mean and standard
    deviation (``ddof``) of the test metric.

    Runs of one group must share the metric; a seed that appears twice in a group is an error (it would be counted
    twice), and so is a ``ddof`` outside ``[0, n - 1]`` for a group of ``n`` seeds.
    """
    if ddof < 0:
        raise ValueError(f"--ddof must lie in [0, n - 1] for n seeds, got {ddof}")
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[(run["dataset"], run["unit"], run["gradient"], run.get("setting", ""))].append(run)
    rows = []
    for (dataset, unit, gradient, setting), members in groups.items():
        where = f"{dataset}/{unit}/{gradient}" + (f" ({setting})" if setting else "")
        metrics = {m["metric"] for m in members}
        if len(metrics) != 1:
            raise ValueError(f"runs of {where} report different metrics: {sorted(metrics)}")
        seeds = [m["seed"] for m in members]
        if len(set(seeds)) != len(seeds):
            dirs = [m["run_dir"] for m in members]
            raise ValueError(f"seed repeated in {where}: {seeds} (run dirs {dirs})")
        if ddof > len(seeds) - 1:
            raise ValueError(f"--ddof {ddof} is outside [0, {len(seeds) - 1}] for {where} ({len(seeds)} seed(s))")
        values = np.array([m["test_metric"] for m in members], dtype=float)
        std = float(np.std(values, ddof=ddof)) if values.size > ddof else float("nan")
        rows.append(
            Row(
                dataset,
                unit,
                gradient,
                metrics.pop(),
                tuple(seeds),
                tuple(map(float, values)),
                float(values.mean()),
                std,
                ddof,
                setting,
            )
        )
    return sorted(rows, key=lambda r: (r.dataset, r.unit, _order(r.gradient), r.setting))


_SCALES = {"accuracy": (100.0, "accuracy (%)"), "mse": (100.0, "MSE ×10⁻²")}


def _scale(metric: str) -> tuple[float, str]:
    return _SCALES.get(metric, (1.0, metric))


def to_markdown(rows: list[Row]) -> str:
    """A Table-1/2-style pivot: one line per model × method, one column per dataset, ``mean ± std (n)``."""
    if not rows:
        return "_no finished runs found_\n"
    out = io.StringIO()
    for metric in sorted({r.metric for r in rows}):
        subset = [r for r in rows if r.metric == metric]
        factor, name = _scale(metric)
        datasets = sorted({r.dataset for r in subset})
        labels = list(
            dict.fromkeys(r.label for r in sorted(subset, key=lambda r: (r.unit, _order(r.gradient), r.setting)))
        )
        cells = {(r.label, r.dataset): r for r in subset}
        out.write(
            f"Test {name}, mean ± std over seeds (ddof={subset[0].ddof}; n = number of seeds; n = 1: the value)\n\n"
        )
        out.write("| | " + " | ".join(datasets) + " |\n|---|" + "---|" * len(datasets) + "\n")
        for label in labels:
            line = []
            for d in datasets:
                r = cells.get((label, d))
                line.append("" if r is None else _cell(r, factor))
            out.write(f"| {label} | " + " | ".join(line) + " |\n")
        out.write("\n")
    return out.getvalue()


def _cell(row: Row, factor: float) -> str:
    """``mean ± std (n)``, or ``value (1)`` for a single seed (its std says nothing)."""
    if len(row.values) == 1:
        return f"{factor * row.mean:.1f} (1)"
    return f"{factor * row.mean:.1f} ± {factor * row.std:.1f} ({len(row.values)})"


def to_csv(rows: list[Row]) -> str:
    """One line per dataset × unit × method × setting, raw (unscaled) metric values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dataset", "unit", "gradient", "setting", "metric", "n", "mean", "std", "ddof", "seeds", "values"])
    for r in rows:
        writer.writerow(
            [
                r.dataset,
                r.unit,
                r.gradient,
                r.setting,
                r.metric,
                len(r.values),
                repr(r.mean),
                repr(r.std),
                r.ddof,
                " ".join(map(str, r.seeds)),
                " ".join(repr(v) for v in r.values),
            ]
        )
    return out.getvalue()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The evaluation records of a run's ``metrics.jsonl`` (event lines such as a non-finite loss are skipped; a
    corrupt file is named in a notice and gives no records)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    try:
        records = read_jsonl(path)
    except RunFileError as error:
        notice(f"no curve for this run: {error}")
        return []
    return [r for r in records if "event" not in r]


def plot_curves(runs: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """One PNG per dataset: training loss and validation metric against the step, one line per run."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_dataset[run["dataset"]].append(run)
    for dataset, members in sorted(by_dataset.items()):
        fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
        colours: dict[tuple[str, str, str], Any] = {}
        labelled: set[tuple[str, str, str]] = set()
        for run in members:
            records = read_metrics(run["run_dir"])
            if not records:
                continue
            group = (run["unit"], run["gradient"], run.get("setting", ""))
            colour = colours.setdefault(group, f"C{len(colours)}")
            steps = [r["step"] for r in records]
            label = _label(*group)
            first = group not in labelled
            labelled.add(group)
            ax_loss.plot(
                steps, [r["train_loss"] for r in records], color=colour, alpha=0.8, label=label if first else None
            )
            ax_val.plot(
                steps,
                [r[f"val_{run['metric']}"] for r in records],
                color=colour,
                alpha=0.8,
                label=label if first else None,
            )
        ax_loss.set(xlabel="step", ylabel="training loss", title=f"{dataset}: training loss")
        ax_val.set(xlabel="step", ylabel=f"validation {members[0]['metric']}", title=f"{dataset}: validation")
        for ax in (ax_loss, ax_val):
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend()
        written.append(save_figure(fig, out_dir / f"curves-{dataset.replace('/', '_')}.png", dpi=100))
    return written


def write_results(paths: list[str | Path], out_dir: str | Path, *, ddof: int = 0, plots: bool = True) -> dict:
    """Collect, aggregate and write ``results.md``, ``results.csv`` and the curve PNGs into ``out_dir``; failed runs
    (their ``failed.json``) are listed below the table."""
    runs = find_runs(paths)
    rows = aggregate(runs, ddof=ddof)
    failed = find_failures(paths)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(rows) + failures_markdown(failed)
    (out_dir / "results.md").write_text(markdown)
    (out_dir / "results.csv").write_text(to_csv(rows))
    pngs = plot_curves(runs, out_dir) if plots else []
    return {"runs": runs, "rows": rows, "markdown": markdown, "pngs": pngs, "failed": failed}
