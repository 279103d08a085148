"""The what/value/unit/note table that the client, data and eval benchmarks write as CSV and Markdown.

Rows may carry the roofline cells of :meth:`perf.roofline.Position.cells` (``x_floor``,
``flop_frac``, ``bw_frac``, ``floor_s``); a table with any such row gets the columns, and a row without
them shows ``n/a`` (nothing to put against the machine's limits: start-up, file I/O, waiting).
"""
from __future__ import annotations

import csv
from pathlib import Path

FIELDS = ["what", "value", "unit", "note"]
ROOFLINE = ["floor_s", "x_floor", "flop_frac", "bw_frac"]
ROOF_HEAD = "x floor | % GEMM peak | % copy bandwidth"


def roof_cells(row: dict) -> str:
    if "x_floor" not in row:
        return "n/a | n/a | n/a"
    return f"{row['x_floor']:.3g}x | {100 * row['flop_frac']:.3g}% | {100 * row['bw_frac']:.3g}%"


def write_table(rows: list, out: Path, name: str, title: str, header: list, digits: int = 3) -> None:
    """``OUT/NAME.csv`` (raw values) and ``OUT/NAME.md`` (title, header lines, values to ``digits``)."""
    out.mkdir(parents=True, exist_ok=True)
    roof = any("x_floor" in r for r in rows)
    with open(out / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS + (ROOFLINE if roof else []), restval="")
        w.writeheader()
        w.writerows(rows)
    head, rule = "| what | value | unit | note |", "|---|---:|---|---|"
    cell = lambda r: f"| {r['what']} | {r['value']:.{digits}g} | {r['unit']} | {r['note']} |"   # noqa: E731
    if roof:
        head, rule = f"| what | value | unit | {ROOF_HEAD} | note |", "|---|---:|---|---:|---:|---:|---|"
        cell = lambda r: f"| {r['what']} | {r['value']:.{digits}g} | {r['unit']} | {roof_cells(r)} | {r['note']} |"   # noqa: E731
    lines = [f"# {title}", "", *header, "", head, rule] + [cell(r) for r in rows]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
