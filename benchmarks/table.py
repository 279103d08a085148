"""The what/value/unit/note table that the client, data and eval benchmarks write as CSV and Markdown."""
from __future__ import annotations

import csv
from pathlib import Path

FIELDS = ["what", "value", "unit", "note"]


def write_table(rows: list, out: Path, name: str, title: str, header: list, digits: int = 3) -> None:
    """``OUT/NAME.csv`` (raw values) and ``OUT/NAME.md`` (title, header lines, values to ``digits``)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    lines = [f"# {title}", "", *header, "", "| what | value | unit | note |", "|---|---:|---|---|"]
    lines += [f"| {r['what']} | {r['value']:.{digits}g} | {r['unit']} | {r['note']} |" for r in rows]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
