"""A rendered table: rows of cells with a style (best / second), and the mean ± std / ranking rules.

Ranking (per column, among rows with a value): every row at the highest mean is ``best`` (bold; ties
are all bold), every row at the next lower mean is ``second`` (underlined). Means are compared after
rounding to the printed precision, so what looks tied is tied.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

NA = "n/a"


@dataclass
class Cell:
    text: str
    style: str = ""          # "", "best" or "second"
    mark: str = ""           # appended in Markdown, LaTeX and HTML (e.g. "≈"), never in the CSV's data


@dataclass
class Table:
    name: str                # file stem, e.g. table1_ii
    title: str
    header: list[str]        # first entry labels the row column
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""           # one line under the table (Markdown, LaTeX); CSV stays plain data


def mean_std(values: Sequence[float | None]):
    """(mean, std) over the non-missing values (sample std, ddof=1; None with fewer than 2 values);
    (None, None) when every value is missing."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def fmt(mean: float | None, std: float | None, digits: int = 1) -> str:
    """``20.5``, ``20.5 ± 0.3`` or ``n/a``."""
    if mean is None:
        return NA
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def rank_styles(means: Sequence[float | None], digits: int = 1) -> list[str]:
    """Style per entry: best ("best"), second best ("second"), else ""."""
    rounded = [None if m is None else round(m, digits) for m in means]
    distinct = sorted({m for m in rounded if m is not None}, reverse=True)
    styles = []
    for m in rounded:
        if m is None or not distinct:
            styles.append("")
        elif m == distinct[0]:
            styles.append("best")
        elif len(distinct) > 1 and m == distinct[1]:
            styles.append("second")
        else:
            styles.append("")
    return styles


def value_columns(labels: list[str], columns: list[list[float | None]], std_cols, ranked=True,
                  digits=1) -> list[list[Cell]]:
    """Cells for ``columns[j][i]`` (means) and ``std_cols[j][i]``, ranked per column when ``ranked``."""
    out = [[Cell(label)] for label in labels]
    for means, stds in zip(columns, std_cols):
        styles = rank_styles(means, digits) if ranked else [""] * len(means)
        for i, (m, s, st) in enumerate(zip(means, stds, styles)):
            out[i].append(Cell(fmt(m, s, digits), st))
    return out
