"""The demo's outputs in ``results/demo``: a console table per scenario, the per-round held-out loss as
Markdown, the paper-layout tables (``fedma tables``, with the cluster statistics as Table 9) and the
Figure 4 style plot per scenario (``fedma plot``), each carrying the one-line synthetic-world note."""
from __future__ import annotations

from pathlib import Path

from rich.table import Table

from harness.registry import METHODS

SHOWN_ROUNDS = (1, 2, 5, 10)


def console_table(scenario: str, curves: dict, rounds: int, note: str, start=None) -> Table:
    """``start``: the round-0 (random-initialized) projector's loss, shared by every method."""
    shown = [r for r in SHOWN_ROUNDS if r <= rounds] or [rounds]
    first = ["round 0"] if start is not None else []
    table = Table("method", *first, *[f"round {r}" for r in shown], caption=note,
                  title=f"Scenario {scenario.upper()}: held-out caption loss (lower is better)")
    for name, curve in curves.items():
        table.add_row(METHODS[name].pretty, *([f"{start:.3f}"] if first else []),
                      *[f"{curve[r - 1]:.3f}" if len(curve) >= r else "–" for r in shown])
    return table


def heldout_markdown(curves_by_scenario: dict, rounds: int, note: str, starts=None) -> str:
    """One table per scenario; with ``starts`` ({scenario: loss}) a round-0 column (random init)."""
    lines = [f"_{note}_", ""]
    for scenario, curves in curves_by_scenario.items():
        start = (starts or {}).get(scenario)
        first = ["round 0 (random init)"] if start is not None else []
        lines += [f"Scenario {scenario.upper()}: held-out caption loss per round (lower is better)", "",
                  "| method | " + " | ".join(first + [f"round {r}" for r in range(1, rounds + 1)]) + " |",
                  "|---|" + ":-:|" * (rounds + len(first))]
        lines += [f"| {METHODS[n].pretty} | " + " | ".join(([f"{start:.3f}"] if first else [])
                                                           + [f"{v:.3f}" for v in c]) + " |" for n, c in curves.items()]
        lines.append("")
    return "\n".join(lines)


def write_demo_outputs(out: Path, curves: dict, rounds: int, console, note: str, stats_csv=None,
                       references=None) -> None:
    """``references``: {scenario: random-initialized projector's scores} (:mod:`harness.mini.reference`)."""
    from harness.cli import main as fedma
    from harness.mini.reference import reference_markdown
    out = Path(out)
    references = references or {}
    starts = {s: r["heldout"] for s, r in references.items()}
    for scenario, by_method in curves.items():
        console.print(console_table(scenario, by_method, rounds, note, starts.get(scenario)))
    runs = [str(out / "runs" / s / m) for s, by_method in curves.items() for m in by_method]
    stats = ["--stats", str(stats_csv)] if stats_csv and Path(stats_csv).is_file() else []
    fedma(["tables", *runs, "--out", str(out / "tables"), "--note", note, *stats])
    for scenario, by_method in curves.items():
        fedma(["plot", *[str(out / "runs" / scenario / m) for m in by_method],
               "--out", str(out / f"heldout_caption_loss_{scenario}.png")])
    (out / "heldout_caption_loss.md").write_text(heldout_markdown(curves, rounds, note, starts))
    if references:
        (out / "reference.md").write_text("\n".join(f"Scenario {s.upper()}\n\n" + reference_markdown(r, note)
                                                    for s, r in references.items()))
    (out / "README.txt").write_text(note + "\n")
