"""Tables 5 and 6 of the paper's Appendix B, from stage-2 (instruction-tuning) run directories.

* Table 5 (``table5_instruct_clients``): records per client and source, from the ``client_stats.json``
  the stage-2 data pipeline wrote beside the data each run read (``data.root``).
* Table 6 (``table6_instruct``): one row per initializing projector (``init.projector``: the stage-1
  run's method, or ``random``), GQA and OCRVQA scored for each client's own fine-tuned model (C1..C5,
  ``eval.per_client``) and for the aggregated one (Global), mean ± std over the seeds that share a row.
``--paper`` adds the paper's rows ("(paper)"; its Table 5 counts are rounded to thousands).
"""
from __future__ import annotations

from pathlib import Path

from harness.core.rundir import RunDir
from harness.core.benchmarks import INSTRUCT, PRETTY, PRIMARY
from harness.report.paper_rows import PAPER_DIR, read_rows
from harness.report.runs import Run, _read_config, data_json, pretty_name, row_order
from harness.report.cells import Cell, Table, fmt, mean_std, rank_styles

PAPER_CSV = "reference_instruct_tables56.csv"
RANDOM = "random"


def is_instruct(run: Run) -> bool:
    return any(r["benchmark"] in INSTRUCT for r in run.records) or run.config.get("data", {}).get("format") == "conversation"


def init_label(run: Run) -> str:
    """The method of the stage-1 run whose projector started this run (``random`` for none)."""
    spec = (run.config.get("init") or {}).get("projector")
    if spec in (None, RANDOM):
        return RANDOM
    path = Path(spec)
    # a run directory, a round checkpoint (its run two levels up), or a final/ projector file
    for cfg in (RunDir(path).config, RunDir(path.parent.parent).config, RunDir(path.parent).config):
        method = (_read_config(cfg).get("aggregator") or {}).get("method") if cfg.is_file() else None
        if method:
            return method
    return path.name


def client_score(run: Run, bench: str, who) -> float | None:
    """Percent score of ``who`` (a client id or ``global``) at the run's last round for ``bench``."""
    recs = [r for r in run.records if r["benchmark"] == bench and r["metric"] == PRIMARY[bench]
            and str(r["client"]) == str(who) and r["value"] is not None]
    if not recs:
        return None
    last = max(r["round"] for r in recs)
    return 100.0 * float(next(r["value"] for r in recs if r["round"] == last))


def _paper(table: str) -> dict:
    return {(r["row"], r["benchmark"], int(r["client"])): float(r["value"])
            for r in read_rows(Path(str(PAPER_DIR / PAPER_CSV))) if r["table"] == table}


def instruct_table(runs: list[Run], paper: bool = False, clients: int = 5) -> Table:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(init_label(run), []).append(run)
    rows = [r for r in row_order(list(groups)) if r != RANDOM] + ([RANDOM] if RANDOM in groups else [])
    who = [*range(clients), "global"]
    header = ["Initial projector"] + [f"{PRETTY[b]} {'Global' if w == 'global' else f'C{w + 1}'}"
                                      for b in INSTRUCT for w in who]
    columns = [[mean_std([client_score(run, b, w) for run in groups[r]]) for r in rows] for b in INSTRUCT for w in who]
    styles = [rank_styles([m for m, _ in col]) for col in columns]
    table = Table("table6_instruct", "Instruction tuning from each federated projector (GQA EM, OCRVQA accuracy)", header)
    for i, r in enumerate(rows):
        label = "Random init (reference)" if r == RANDOM else pretty_name(r)
        table.rows.append([Cell(label)] + [Cell(fmt(*col[i]), st[i]) for col, st in zip(columns, styles)])
    if paper:
        ref = _paper("table6")
        for r in row_order({k[0] for k in ref}):
            table.rows.append([Cell(f"{pretty_name(r)} (paper)")] + [
                Cell(fmt(ref.get((r, b, w + 1)) if w != "global" else None, None)) for b in INSTRUCT for w in who])
    return table


def client_stats_table(runs: list[Run], paper: bool = False) -> Table | None:
    stats = next((s for s in (_client_stats(r) for r in runs) if s), None)
    if stats is None:
        return None
    k = stats["clients"]
    table = Table("table5_instruct_clients", "Instruction data per client", ["Dataset"] +
                  [f"Client {i + 1}" for i in range(k)] + ["Total"])
    ref = _paper("table5") if paper else {}
    for source, counts in stats["counts"].items():
        cells = [Cell(PRETTY.get(source, source))] + [Cell(str(c)) for c in counts] + [Cell(str(sum(counts)))]
        table.rows.append(cells)
        if any(k_[0] == source for k_ in ref):
            vals = [ref.get((source, source, i + 1)) for i in range(k)]
            table.rows.append([Cell(f"{PRETTY.get(source, source)} (paper)")] +
                              [Cell(f"{v / 1000:.0f}K" if v else "n/a") for v in vals] +
                              [Cell(f"{sum(v for v in vals if v) / 1e6:.2f}M")])
    return table


def _client_stats(run: Run) -> dict | None:
    return data_json(run, "client_stats.json")


def instruct_tables(runs: list[Run], paper: bool = False) -> list[Table]:
    """Tables 5 and 6 when some run is a stage-2 run; [] otherwise."""
    staged = [r for r in runs if is_instruct(r)]
    if not staged:
        return []
    clients = max([int(r.config.get("federation", {}).get("clients", 5)) for r in staged])
    return [t for t in (client_stats_table(staged, paper), instruct_table(staged, paper, clients)) if t is not None]
