"""The demo's outputs in ``results/demo``: a console table per scenario, the per-round held-out loss as
Markdown, the paper-layout tables (``fedma tables``, with the cluster statistics as Table 9) and the
Figure 4 style plot per scenario (``fedma plot``), each carrying the one-line synthetic-world note."""
from __future__ import annotations

from pathlib import Path

from rich.table import Table

from harness.core.rundir import RunDir
from harness.core.records import read_records
from harness.report.runs import pretty_name

SHOWN_ROUNDS = (1, 2, 5, 10)


def console_table(scenario: str, curves: dict, rounds: int, note: str, start=None) -> Table:
    """``start``: the round-0 (random-initialized) projector's loss, shared by every method."""
    shown = [r for r in SHOWN_ROUNDS if r <= rounds] or [rounds]
    first = ["round 0"] if start is not None else []
    table = Table("method", *first, *[f"round {r}" for r in shown], caption=note,
                  title=f"Scenario {scenario.upper()}: held-out caption loss (lower is better)")
    for name, curve in curves.items():
        table.add_row(pretty_name(name), *([f"{start:.3f}"] if first else []),
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
        lines += [f"| {pretty_name(n)} | " + " | ".join(([f"{start:.3f}"] if first else [])
                                                           + [f"{v:.3f}" for v in c]) + " |" for n, c in curves.items()]
        lines.append("")
    return "\n".join(lines)


MOMENTUM_ROWS = (("beta", "beta (momentum coefficient)"), ("delta", "delta (basis shift, mean 1 - cos)"),
                 ("groups", "groups (of near-degenerate singular values)"), ("change", "change ‖X_OPM − X‖ / ‖X‖"))


def momentum_markdown(records_by_run: dict, note: str) -> str:
    """Fed-CMP's OPM per round and fused block, from the ``server`` records of each run ({(scenario, name):
    records}): how strongly it smoothed (beta), how far this round's basis had turned after alignment
    (delta), in how many groups it aligned the basis, and how far that moved the fusion (change)."""
    lines = [f"_{note}_", ""]
    for (scenario, name), records in records_by_run.items():
        values = {(r["metric"], r["round"]): r["value"] for r in records if r["benchmark"] == "server"}
        rounds = sorted({t for m, t in values if "/" in m})
        blocks = sorted({m.split("/", 1)[1] for m, _ in values if "/" in m})
        lines += [f"Scenario {scenario.upper()}, {pretty_name(name)}: orthogonality-preserved momentum per round",
                  "", "| block | quantity | " + " | ".join(f"round {t}" for t in rounds) + " |",
                  "|---|---|" + ":-:|" * len(rounds)]
        lines += [f"| {block} | {label} | " + " | ".join(_cell(values.get((f"{q}/{block}", t))) for t in rounds) + " |"
                  for block in blocks for q, label in MOMENTUM_ROWS]
        lines.append("")
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if float(value).is_integer() and value >= 1 else f"{value:.3f}"


def largest_momentum_change(records_by_run: dict) -> str:
    changes = [(r["value"], s, n, r["round"], r["metric"].split("/", 1)[1]) for (s, n), records in records_by_run.items()
               for r in records if r["benchmark"] == "server" and r["metric"].startswith("change/")]
    if not changes:
        return "Fed-CMP: no momentum step recorded (OPM off, or a single round)"
    lines = []
    for name in dict.fromkeys(n for _, _, n, _, _ in changes):
        value, scenario, _, round_, block = max(c for c in changes if c[2] == name)
        lines.append(f"{pretty_name(name)}: OPM's largest move was {value:.0%} of the fused {block} (scenario "
                     f"{scenario.upper()}, round {round_})")
    return "; ".join(lines) + "; every round in fedcmp_momentum.md"


def write_demo_outputs(out: Path, curves: dict, rounds: int, console, note: str, stats_csv=None,
                       references=None) -> None:
    """``references``: {scenario: random-initialized projector's scores} (:mod:`harness.mini.reference`)."""
    from harness.mini.reference import reference_markdown
    from harness.report.plot import plot_runs
    from harness.report.render import write_tables
    from harness.report.runs import load_run
    from harness.report.tables import all_tables
    out = Path(out)
    references = references or {}
    starts = {s: r["heldout"] for s, r in references.items()}
    for scenario, by_method in curves.items():
        console.print(console_table(scenario, by_method, rounds, note, starts.get(scenario)))
    runs = {s: [load_run(out / "runs" / s / m) for m in by_method] for s, by_method in curves.items()}
    tables = all_tables([r for rs in runs.values() for r in rs], stats_csv=stats_csv)
    for t in tables:
        t.note = note
    for path in write_tables(tables, ["csv", "latex", "md"], out / "tables"):
        console.print(str(path))
    for scenario, scenario_runs in runs.items():
        console.print(str(plot_runs(scenario_runs, "heldout.caption_loss", out / f"heldout_caption_loss_{scenario}.png")))
    (out / "heldout_caption_loss.md").write_text(heldout_markdown(curves, rounds, note, starts))
    if references:
        (out / "reference.md").write_text("\n".join(f"Scenario {s.upper()}\n\n" + reference_markdown(r, note)
                                                    for s, r in references.items()))
    fedcmp = {(s, n): read_records(RunDir(out / "runs" / s / n).records) for s, by in curves.items()
              for n in by if n.startswith("fedcmp")}
    if fedcmp:
        (out / "fedcmp_momentum.md").write_text(momentum_markdown(fedcmp, note))
        console.print(largest_momentum_change(fedcmp))
    (out / "README.txt").write_text(note + "\n")
