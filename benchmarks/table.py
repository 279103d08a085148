"""The what/value/unit/note table that the client, data and eval benchmarks write as CSV and Markdown.

A row may carry where it stands against the machine's limits (``benchmarks.roofline.Position.cells()``:
floor_s, x_floor, bw_frac, flop_frac); a table with any such row gets those four columns, blank elsewhere.
"""
from __future__ import annotations

import csv
from pathlib import Path

FIELDS = ["what", "value", "unit", "note"]
ROOFLINE = {"floor_s": "floor s", "x_floor": "x floor", "bw_frac": "bandwidth frac", "flop_frac": "FLOP frac"}


def write_table(rows: list, out: Path, name: str, title: str, header: list, digits: int = 3) -> None:
    """``OUT/NAME.csv`` (raw values) and ``OUT/NAME.md`` (title, header lines, values to ``digits``)."""
    out.mkdir(parents=True, exist_ok=True)
    limits = [k for k in ROOFLINE if any(k in r for r in rows)]
    with open(out / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS + limits, restval="")
        w.writeheader()
        w.writerows(rows)
    heads = ["what", "value", "unit", *(ROOFLINE[k] for k in limits), "note"]
    lines = [f"# {title}", "", *header, "", "| " + " | ".join(heads) + " |",
             "|---|---:|---|" + "---:|" * len(limits) + "---|"]
    for r in rows:
        cells = [r["what"], f"{r['value']:.{digits}g}", r["unit"],
                 *(f"{r[k]:.3g}" if k in r else "" for k in limits), r["note"]]
        lines.append("| " + " | ".join(cells) + " |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
