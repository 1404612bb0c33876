"""Tables of ``rhel bench`` reports: ratios to BPTT, memory growth per 1,000 steps, the side-by-side text table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The reference of the "x forward" ratios: the training-mode forward pass (``rhel.reports.bench_worker.FORWARD``).
FORWARD = "forward"


def describe(r: dict[str, Any]) -> str:
    """One line for one record: time, memory, peak RSS and compile time, or the failure."""
    if r["status"] == "skipped" and r.get("extrapolated_memory_mb") is not None:
        return f"{r['method']:>18} L={r['length']:>6}: SKIPPED (~{r['extrapolated_memory_mb']:,.0f} MB extrapolated)"
    if r["status"] != "ok":
        return f"{r['method']:>18} L={r['length']:>6}: {r['status'].upper()} ({r.get('error', '')[:120]})"
    return (f"{r['method']:>18} L={r['length']:>6}: {r['step_time_s'] * 1e3:9.1f} ms/step, +{r['memory_mb']:8.1f} MB "
            f"(peak RSS {r['peak_rss_mb']:.0f} MB, compile {r['compile_s']:.1f} s)")  # fmt: skip


def extrapolate_memory(results: Sequence[dict[str, Any]], method: str, length: int) -> float | None:
    """The memory (MB) a step of ``method`` would add at ``length``: the least-squares line through its measured
    lengths (from two of them; in proportion to the length from one); ``None`` with none measured."""
    pts = [(r["length"], r["memory_mb"]) for r in results if r["method"] == method and r["status"] == "ok"]
    if not pts:
        return None
    if len({x for x, _ in pts}) < 2:
        x, y = max(pts)
        return max(y, 0.0) * length / x
    n = len(pts)
    mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
    slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return max(my + slope * (length - mx), 0.0)


def ratio_table(results: Sequence[dict[str, Any]], reference: str = "bptt") -> list[dict[str, Any]]:
    """Per length and per method: time and memory ratios against ``reference`` (BPTT), and the time as a multiple
    of the forward pass's (``forward_ratio``, where the ``forward`` method ran). A ratio is ``None`` where either
    measurement failed; ``status`` carries the method's status, ``extrapolated_memory_mb`` a skipped length's
    extrapolated memory."""
    by = {(r["method"], r["length"]): r for r in results}
    rows = []
    for length in sorted({r["length"] for r in results}):
        ref = by.get((reference, length))
        ref_ok = ref is not None and ref["status"] == "ok"
        fwd = by.get((FORWARD, length))
        fwd_ok = fwd is not None and fwd["status"] == "ok" and fwd["step_time_s"] > 0
        for method in dict.fromkeys(r["method"] for r in results):
            r = by.get((method, length))
            if r is None:
                continue
            ok = r["status"] == "ok"
            row = {"length": length, "method": method, "status": r["status"],
                   "step_time_s": r.get("step_time_s") if ok else None,
                   "memory_mb": r.get("memory_mb") if ok else None,
                   "time_ratio": r["step_time_s"] / ref["step_time_s"] if ok and ref_ok else None,
                   "memory_ratio": (r["memory_mb"] / ref["memory_mb"] if ok and ref_ok and ref["memory_mb"] > 0
                                    else None),
                   "forward_ratio": r["step_time_s"] / fwd["step_time_s"] if ok and fwd_ok else None,
                   "extrapolated_memory_mb": r.get("extrapolated_memory_mb"),
                   "contract_warning": bool(r.get("contract_warnings"))}  # fmt: skip
            rows.append(row)
    return rows


def growth_per_1k(results: Sequence[dict[str, Any]], method: str) -> float | None:
    """Least-squares slope of ``memory_mb`` against length, in MB per 1,000 steps (lengths >= 4096, ok only)."""
    pts = [(r["length"], r["memory_mb"]) for r in results
           if r["method"] == method and r["status"] == "ok" and r["length"] >= 4096]  # fmt: skip
    if len(pts) < 2:
        return None
    n = len(pts)
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return 1000.0 * sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


#: The note under a table whose steps carry ``*`` (a record with ``contract_warnings``).
CONTRACT_FOOTNOTE = (
    "* RHEL's contract check failed there (the record's contract_warnings): the step's cost is measured, but its "
    "gradient is not accurate (see rhel gradcheck)"
)


def method_label(method: str, config: dict[str, Any]) -> str:
    """How a table heads a method: its name, with ``resync_every=K`` for a symmetric RHEL method when the bench
    re-synchronised them (``config["resync_every"]``)."""
    from rhel.gradients.methods import GRADIENT_METHODS

    row = GRADIENT_METHODS.get(method)
    k = config.get("resync_every")
    return f"{method} resync_every={k}" if k is not None and row is not None and row.symmetric else method


def format_bench(report: dict[str, Any], reference: str = "bptt") -> str:
    """The side-by-side table: one row per length, per method time (ms) and memory (MB) with ratios to BPTT and,
    where the forward pass was measured, the time as a multiple of it (xFwd). A length skipped for memory shows the
    extrapolated MB (``~``); ``*`` marks a step whose RHEL contract check warned (its gradient is not accurate)."""
    methods = report["methods"]
    rows = report["ratios"]
    index = {(r["method"], r["length"]): r for r in rows}
    config = report.get("bench_config", {})
    head = f"{'length':>7} | " + " | ".join(f"{method_label(m, config):^33}" for m in methods)
    sub = f"{'':>7} | " + " | ".join(f"{'ms':>8} {'xFwd':>5} {'xBPTT':>5} {'MB':>6} {'xBPTT':>5}" for _ in methods)
    lines = [head, sub, "-" * len(sub)]
    for length in report["lengths"]:
        cells = []
        for m in methods:
            r = index.get((m, length))
            if r is None:
                cells.append(f"{'':>33}")
            elif r["status"] == "skipped" and r.get("extrapolated_memory_mb") is not None:
                cells.append(f"{'SKIPPED':>20} {'~' + format(r['extrapolated_memory_mb'], '.0f'):>6} {'':>5}")
            elif r["status"] != "ok":
                cells.append(f"{r['status'].upper():^33}")
            else:
                tr = "" if r["time_ratio"] is None else f"{r['time_ratio']:.2f}"
                fr = "" if r.get("forward_ratio") is None else f"{r['forward_ratio']:.2f}"
                mr = "" if r["memory_ratio"] is None else f"{r['memory_ratio']:.2f}"
                mark = "*" if r.get("contract_warning") else " "
                cells.append(f"{r['step_time_s'] * 1e3:>7.1f}{mark} {fr:>5} {tr:>5} {r['memory_mb']:>6.0f} {mr:>5}")
        lines.append(f"{length:>7} | " + " | ".join(cells))
    growth = {m: growth_per_1k(report["results"], m) for m in methods}
    if any(r.get("contract_warning") for r in rows):
        lines.append(CONTRACT_FOOTNOTE)
    lines.append("")
    lines.append("memory growth per 1k steps (MB, fit over lengths >= 4096): " + ", ".join(
        f"{m} {'n/a' if g is None else f'{g:.2f}'}" for m, g in growth.items()))  # fmt: skip
    return "\n".join(lines) + "\n"
