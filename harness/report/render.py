"""Writing a Table as CSV (plain text cells), LaTeX (booktabs; best \\textbf, second \\underline) and
Markdown (best **bold**, second <u>underlined</u>)."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from harness.core.errors import ConfigError
from harness.report.cells import Table

FORMATS = {"csv": "csv", "latex": "tex", "md": "md"}


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.header)
    for row in table.rows:
        w.writerow([c.text for c in row])
    return buf.getvalue()


def _latex_escape(text: str) -> str:
    text = text.replace("\\", r"\textbackslash{}")
    for ch in "&%$#_{}":
        text = text.replace(ch, "\\" + ch)
    return text.replace("±", r"$\pm$").replace("≈", r"$\approx$")


def _latex_cell(cell) -> str:
    text = _latex_escape(cell.text + cell.mark)
    return {"best": rf"\textbf{{{text}}}", "second": rf"\underline{{{text}}}"}.get(cell.style, text)


def to_latex(table: Table) -> str:
    cols = "l" + "c" * (len(table.header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_latex_escape(table.title)}}}",
             rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(_latex_escape(h) for h in table.header) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_cell(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par\footnotesize {_latex_escape(table.note)}"] if table.note else []
    lines += [r"\end{table}"]
    return "\n".join(lines) + "\n"


def _md_cell(cell) -> str:
    text = (cell.text + cell.mark).replace("|", r"\|")
    return {"best": f"**{text}**", "second": f"<u>{text}</u>"}.get(cell.style, text)


def to_markdown(table: Table) -> str:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.header) + " |",
             "|" + "|".join(["---"] + [":-:"] * (len(table.header) - 1)) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    lines += ["", f"_{table.note}_"] if table.note else []
    return "\n".join(lines) + "\n"


RENDERERS = {"csv": to_csv, "latex": to_latex, "md": to_markdown}


def parse_formats(spec: str) -> list:
    """``"csv,latex,md"`` -> list; ConfigError naming the valid formats otherwise."""
    formats = [f.strip() for f in spec.split(",") if f.strip()]
    bad = [f for f in formats if f not in RENDERERS]
    if bad or not formats:
        raise ConfigError(f"--format: unknown format {bad or spec!r}; valid: {', '.join(RENDERERS)}")
    return formats


def write_tables(tables: Iterable[Table], formats: list, out_dir) -> list:
    """Write every table in every format to ``out_dir/NAME.{csv,tex,md}``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for table in tables:
        for f in formats:
            path = out_dir / f"{table.name}.{FORMATS[f]}"
            path.write_text(RENDERERS[f](table))
            paths.append(path)
    return paths
