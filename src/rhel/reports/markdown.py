"""Markdown tables of the reports' JSON (used to write BENCHMARKS.md): ``python -m rhel.reports.markdown FILE.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rhel.reports.bench_tables import growth_per_1k


def bench_markdown(report: dict[str, Any]) -> str:
    """Per length: each method's ms/step and MB, and RHEL's (both estimators') ratios to BPTT side by side."""
    methods = report["methods"]
    index = {(r["method"], r["length"]): r for r in report["ratios"]}
    head = ["length"]
    for m in methods:
        head += [f"{m} ms", f"{m} MB"]
    rhel_methods = [m for m in methods if m.startswith("rhel")]
    ratio_keys = ("forward_ratio",) * ("forward" in methods) + ("time_ratio", "memory_ratio")
    for m in rhel_methods:
        head += [f"{m} time/forward"] if "forward" in methods else []
        head += [f"{m} time/BPTT", f"{m} mem/BPTT"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for length in report["lengths"]:
        cells = [f"{length:,}"]
        for m in methods:
            r = index.get((m, length))
            if r is not None and r.get("extrapolated_memory_mb") is not None:
                cells += ["SKIPPED", f"~{r['extrapolated_memory_mb']:,.0f}"]
            elif r is None or r["status"] != "ok":
                status = "—" if r is None else r["status"].upper()
                cells += [status, status]
            else:
                cells += [f"{r['step_time_s'] * 1e3:.0f}", f"{r['memory_mb']:.0f}"]
        for m in rhel_methods:
            r = index.get((m, length))
            for key in ratio_keys:
                v = None if r is None else r.get(key)
                cells.append("—" if v is None else f"**{v:.2f}**")
        lines.append("| " + " | ".join(cells) + " |")
    growth = {m: growth_per_1k(report["results"], m) for m in methods}
    lines.append("")
    lines.append(
        "Memory growth per 1,000 steps (least-squares slope over lengths ≥ 4,096): "
        + ", ".join(f"{m} {'n/a' if g is None else f'{g:.1f} MB'}" for m, g in growth.items())
        + (f"; RHEL/BPTT {growth['rhel'] / growth['bptt']:.2f}." if growth.get("rhel") and growth.get("bptt") else ".")
    )
    return "\n".join(lines) + "\n"


def gradcheck_markdown(report: dict[str, Any]) -> str:
    """The summary rows of a gradcheck report."""
    head = "| precision | estimator | ε | min cosine | worst norm ratio (where) | max rel. error | global rel. error |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for s in report["summary"]:
        lines.append(
            f"| {s['precision']} | {s['estimator']} | {s['epsilon']:.2g} | {s['min_cosine']:.9f} | "
            f"{s['worst_norm_ratio']:.7f} ({s['worst_norm_ratio_at']}) | {s['max_rel_error']:.1e} | "
            f"{s['global_rel_error']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    for path in argv if argv is not None else sys.argv[1:]:
        report = json.loads(Path(path).read_text())
        kind = report.get("schema", "")
        print(bench_markdown(report) if kind.startswith("rhel.bench") else gradcheck_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
