"""The paper's reference numbers shipped as package data (``harness/report/paper/*.csv``, linked from
results/paper), read as CSV rows: below both the stage-1 tables and the stage-2 (instruct) tables, which
each compare against them."""
from __future__ import annotations

import csv
from importlib.resources import files
from pathlib import Path

PAPER_DIR = files("harness.report") / "paper"     # package data (results/paper links here)


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
