"""Step 5a, ``stats``: the paper's Table 9, samples per cluster after capping, per scenario.

    count_k = |keep_k|,   percent_k = 100 * count_k / sum_j count_j   (two decimals)

Written as ``table9.csv`` (scenario, cluster, count, count_short, percent; the reference file's
columns plus the exact count), ``table9.tex`` (booktabs) and ``table9.md``. Short counts follow the
paper: 1M, 368K.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from harness.data.store import METRICS, metric_dir

NAMES = {"ii": "Image-Image", "tt": "Text-Text", "it": "Joint-Modal", "xm": "Cross-Modal"}


def short(n: int) -> str:
    """1000000 -> '1M', 368123 -> '368K', 950 -> '950'."""
    if n >= 1_000_000 and n % 1_000_000 < 500:
        return f"{n // 1_000_000}M"
    return f"{round(n / 1000)}K" if n >= 1000 else str(n)


def rows_for(work, metric: str) -> list[dict]:
    d = metric_dir(work, metric)
    labels, keep = np.load(d / "labels.npy"), np.load(d / "keep.npy")
    k = int(json.loads((d / "cap.json").read_text())["cluster"]["k"])
    counts = np.bincount(labels[keep], minlength=k)
    total = int(counts.sum())
    return [{"scenario": metric.upper(), "cluster": c, "count": int(n), "count_short": short(int(n)),
             "percent": round(100.0 * int(n) / total, 2)} for c, n in enumerate(counts)]


def stats(work, metrics=METRICS, out=None) -> list[dict]:
    """Table 9 for the capped scenarios among ``metrics``; writes CSV, LaTeX and Markdown."""
    rows = [r for m in metrics if (metric_dir(work, m) / "cap.json").is_file() for r in rows_for(work, m)]
    out = Path(out) if out else Path(work) / "stats"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "table9.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["scenario", "cluster", "count", "count_short", "percent"])
        w.writeheader()
        w.writerows(rows)
    (out / "table9.md").write_text(markdown(rows))
    (out / "table9.tex").write_text(latex(rows))
    return rows


def _by_scenario(rows):
    order = []
    for r in rows:
        if r["scenario"] not in order:
            order.append(r["scenario"])
    return [(s, [r for r in rows if r["scenario"] == s]) for s in order]


def markdown(rows) -> str:
    k = max((r["cluster"] for r in rows), default=-1) + 1
    lines = ["| Method | Metric | " + " | ".join(f"Cluster {c}" for c in range(k)) + " |",
             "|---|---|" + "---:|" * k]
    for s, rs in _by_scenario(rows):
        lines.append(f"| {NAMES[s.lower()]} | Count | " + " | ".join(r["count_short"] for r in rs) + " |")
        lines.append("|  | Percentage | " + " | ".join(f"{r['percent']:.2f}%" for r in rs) + " |")
    return "\n".join(lines) + "\n"


def latex(rows) -> str:
    k = max((r["cluster"] for r in rows), default=-1) + 1
    lines = [r"\begin{tabular}{ll" + "r" * k + "}", r"\toprule",
             "Method & Metric & " + " & ".join(f"Cluster {c}" for c in range(k)) + r" \\", r"\midrule"]
    for s, rs in _by_scenario(rows):
        lines.append(f"{NAMES[s.lower()]} & Count & " + " & ".join(r["count_short"] for r in rs) + r" \\")
        lines.append(" & Percentage & " + " & ".join(f"{r['percent']:.2f}\\%" for r in rs) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
