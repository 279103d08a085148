"""``compare.csv`` (every field, raw numbers) and the same table as Markdown and LaTeX."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import List

from harness.compare.table import FIELDS, Line
from harness.report.cells import Cell, Table

DIRECTION = {True: "higher is better", False: "lower is better"}


def write_csv(lines: List[Line], path: Path) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for line in lines:
            w.writerow({k: _plain(v) for k, v in line.as_row().items()})


def _plain(v):
    return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)


def to_table(lines: List[Line], reference: str, higher: bool, name: str = "compare") -> Table:
    """One rendered table: a line per (row, setting, scenario); the verdict cell bold where it holds."""
    from harness.report.runs import pretty_name
    show_setting = any(line.setting for line in lines)
    header = ["method", *(["setting"] if show_setting else []), "scenario", "pairs", "Δ (95% CI)", "p",
              "p Holm", "p BH", "better/worse", "verdict"]
    metric, summary = (lines[0].metric, lines[0].summary) if lines else ("", "")
    table = Table(name, f"{metric} ({summary}): each method minus {_pretty(reference, pretty_name)} on the same "
                        f"seeds ({DIRECTION[higher]})", header)
    for line in lines:
        noise = "≈" if line.within_noise else ""
        table.rows.append([Cell(_pretty(line.method, pretty_name)), *([Cell(line.setting)] if show_setting else []),
                           Cell(line.scenario.upper() if line.scenario != "pooled" else "pooled"),
                           Cell(str(line.n_pairs)),
                           Cell(f"{_num(line.mean_diff)}{noise} [{_num(line.ci_low)}, {_num(line.ci_high)}]"),
                           Cell(_p(line.p_perm)), Cell(_p(line.p_holm)), Cell(_p(line.p_bh)),
                           Cell(f"{line.better}/{line.worse}"),
                           Cell(line.verdict, "best" if line.verdict == "holds" else "")])
    table.note = note(lines)
    return table


def note(lines: List[Line]) -> str:
    families = sorted({line.family for line in lines})
    parts = ["Pairs: the same setting, scenario and seed. Interval: percentile bootstrap over pairs (stratified by "
             "scenario when pooled); p: exact sign-flip permutation test; Holm and BH adjusted over the family "
             f"({', '.join(families)}); verdict on Holm's p < 0.05 (bold: holds)."]
    ses = [line.sampling_se for line in lines if line.sampling_se is not None]
    if ses:
        parts.append(f"≈: |Δ| is smaller than two question-sampling standard errors of one run's score "
                     f"({min(ses):.2g}-{max(ses):.2g} here).")
    return " ".join(parts)


def _pretty(row: str, pretty_name) -> str:
    base, bracket, rest = row.partition("[")
    return pretty_name(base) + (bracket + rest if bracket else "")


def _num(v: float) -> str:
    return f"{v:+.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:+.2e}"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"
