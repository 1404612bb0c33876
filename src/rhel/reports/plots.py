"""Plots of the reports: gradient alignment bars (the paper's Fig. 4), the eps sweep, and cost against length."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rhel.figures import pyplot, save_figure


def plot_alignment(report: dict[str, Any], path: str | Path, *, estimator: str | None = None) -> Path:
    """Bar chart like the paper's Fig. 4: cosine similarity and norm ratio of RHEL vs BPTT for every HRU
    parameter, grouped by block, one bar per precision (one estimator, default the first, the paper's central)."""
    plt = pyplot()
    estimator = estimator or report["estimators"][0]
    rows = [r for r in report["results"] if r["estimator"] == estimator and r["block"].startswith("block")]
    params = list(dict.fromkeys(r["param"] for r in rows if r["param"].startswith("unit.")))
    blocks = list(dict.fromkeys(r["block"] for r in rows))
    precisions = report["precisions"]
    index = {(r["precision"], r["block"], r["param"]): r for r in rows}
    fig, axes = plt.subplots(2, len(params), figsize=(2.0 * len(params) + 1, 5), squeeze=False, sharey="row")
    width = 0.8 / len(precisions)
    x = np.arange(len(blocks))
    for j, param in enumerate(params):
        for row, (metric, label) in enumerate((("cosine", "cosine similarity"), ("norm_ratio", "norm ratio"))):
            ax = axes[row, j]
            for i, precision in enumerate(precisions):
                values = [index.get((precision, b, param), {}).get(metric) for b in blocks]
                values = [math.nan if v is None else v for v in values]
                ax.bar(x + (i - (len(precisions) - 1) / 2) * width, values, width, label=precision)
            ax.axhline(1.0, color="k", lw=0.6, ls="--")
            ax.set_ylim(0.3, 1.1)
            ax.set_yticks([0.5, 1.0])
            ax.set_xticks(x, [b.replace("block ", "") for b in blocks])
            if row == 0:
                ax.set_title(param.removeprefix("unit."), fontsize=9)
            else:
                ax.set_xlabel("block")
            if j == 0:
                ax.set_ylabel(label)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    unit = report["config"]["model"]["unit"]
    fig.suptitle(f"RHEL ({estimator}) vs BPTT, {unit} HSSM, {report['config']['data']['name']} "
                 f"(L={report['length']}, batch {report['batch_size']})", fontsize=10)  # fmt: skip
    return save_figure(fig, path)


def plot_eps_sweep(report: dict[str, Any], path: str | Path) -> Path:
    """Relative error of RHEL's gradient (all leaves together) against eps, log-log, per precision and
    estimator; the eps each curve's table used (the config's or the core's default) is marked with a star."""
    plt = pyplot()
    rows = report["eps_sweep"] or []
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    styles = {"float32": "--", "float64": "-"}
    colors = dict(zip(report["estimators"], ("C0", "C1", "C2", "C3"), strict=False))
    for precision in report["precisions"]:
        for estimator in report["estimators"]:
            curve = [r for r in rows if r["precision"] == precision and r["estimator"] == estimator]
            if not curve:
                continue
            eps = [r["epsilon"] for r in curve]
            err = [max(r["rel_error"], 1e-17) if r["rel_error"] is not None else math.nan for r in curve]
            ax.loglog(eps, err, styles.get(precision, "-"), marker="o", ms=3, color=colors[estimator],
                      label=f"{estimator}, {precision}")  # fmt: skip
            for r, e in zip(curve, err, strict=True):
                if r["default"]:
                    ax.plot([r["epsilon"]], [e], "*", ms=13, color=colors[estimator], mec="k")
    ax.plot([], [], "*", ms=10, color="gray", mec="k", label="eps of the tables")
    relative = report.get("relative_epsilon", True)
    ax.set_xlabel("eps (relative nudge, state units)" if relative else "eps (absolute: times the loss gradient)")
    ax.set_ylabel("relative error |g_RHEL - g_BPTT| / |g_BPTT|")
    unit = report["config"]["model"]["unit"]
    ax.set_title(f"RHEL error vs eps, {unit} HSSM, L={report['length']}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_bench(report: dict[str, Any], path: str | Path) -> Path:
    """Step time and peak memory against sequence length, one line per gradient method (failed points omitted;
    an OOM or timeout is marked with an x at the top of the axis)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    methods = list(dict.fromkeys(r["method"] for r in report["results"]))
    for k, method in enumerate(methods):
        rows = sorted((r for r in report["results"] if r["method"] == method), key=lambda r: r["length"])
        ok = [r for r in rows if r["status"] == "ok"]
        bad = [r for r in rows if r["status"] != "ok"]
        for ax, key in zip(axes, ("step_time_s", "memory_mb"), strict=True):
            ax.loglog([r["length"] for r in ok], [r[key] for r in ok], marker="o", ms=4, color=f"C{k}", label=method)
            for r in bad:
                ax.annotate(r["status"], (r["length"], 1), xycoords=("data", "axes fraction"), color=f"C{k}",
                            fontsize=7, rotation=90, va="top", ha="center")  # fmt: skip
    axes[0].set_ylabel("time per training step (s, median)")
    axes[1].set_ylabel(report.get("memory_label", "peak memory (MB)"))
    for ax in axes:
        ax.set_xlabel("sequence length")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    c = report["bench_config"]
    fig.suptitle(f"{c['model']} HSSM, {c['num_blocks']} blocks, hidden {c['hidden']}, state {c['state_size']}, "
                 f"batch {c['batch_size']}; {report['machine']['backend']} ({report['machine']['cpu']})",
                 fontsize=9)  # fmt: skip
    return save_figure(fig, path)
