"""The communication table (``comm_<scenario>``): per method, the mean megabytes one client receives
and sends per round it takes part in, and the run's total over all clients and rounds (mean ± std over
seeds), from the ``comm/bytes_down`` and ``comm/bytes_up`` records (:mod:`harness.engine.comm`)."""
from __future__ import annotations

from harness.report.runs import Run, main_row, pretty_name, row_order
from harness.report.cells import Cell, Table, fmt, mean_std

MB = 1e6
COLUMNS = (("MB down / client-round", "bytes_down", "mean"), ("MB up / client-round", "bytes_up", "mean"),
           ("MB total (run)", None, "sum"))


def comm_values(run: Run, metric: str | None, how: str) -> float | None:
    vals = [r["value"] for r in run.records if r["benchmark"] == "comm" and (metric is None or r["metric"] == metric)]
    if not vals:
        return None
    return (sum(vals) if how == "sum" else sum(vals) / len(vals)) / MB


def comm_tables(runs: list[Run]) -> list[Table]:
    tables = []
    for sc in sorted({r.scenario for r in runs}):
        groups: dict[str, list[Run]] = {}
        for run in runs:
            key = main_row(run) if run.scenario == sc else None
            if key is not None and any(r["benchmark"] == "comm" for r in run.records):
                groups.setdefault(key, []).append(run)
        if not groups:
            continue
        table = Table(f"comm_{sc.lower()}", f"Scenario {sc}: communication", ["Method", *(c for c, _, _ in COLUMNS)])
        for key in row_order(groups):
            cells = [fmt(*mean_std([comm_values(run, m, how) for run in groups[key]]), digits=3) for _, m, how in COLUMNS]
            table.rows.append([Cell(pretty_name(key)), *map(Cell, cells)])
        tables.append(table)
    return tables
