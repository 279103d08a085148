"""The per-client data table (``clients_<scenario>``) for runs on more clients than clusters: how many
samples of each scenario cluster every client holds after the Dirichlet(alpha) deal of ``fedma data
split --clients K --alpha A``, with each client's total and share, read from ``DATA/client_clusters.json``.
Runs on the clusters themselves (K = k) have Table 9 instead."""
from __future__ import annotations

from harness.report.runs import Run, data_json
from harness.report.cells import Cell, Table


def client_tables(runs: list[Run]) -> list[Table]:
    tables = []
    for sc in sorted({r.scenario for r in runs}):
        deal = next((d for d in (data_json(r, "client_clusters.json") for r in runs if r.scenario == sc) if d), None)
        if deal is not None:
            tables.append(client_table(sc, deal))
    return tables


def client_table(scenario: str, deal: dict) -> Table:
    counts = deal["counts"]
    total = sum(map(sum, counts)) or 1
    table = Table(f"clients_{scenario.lower()}",
                  f"Scenario {scenario}: samples per client and source cluster (Dirichlet alpha {deal['alpha']:g})",
                  ["Client"] + [f"Cluster {c}" for c in range(deal["clusters"])] + ["Total", "Share"])
    for client, row in enumerate(counts):
        table.rows.append([Cell(str(client))] + [Cell(str(n)) for n in row] +
                          [Cell(str(sum(row))), Cell(f"{100.0 * sum(row) / total:.2f}%")])
    return table
