"""The paper's tables from run directories (SPEC 7).

* Tables 1, 2, 7, 8 (``table{1,2,7,8}_{ii,tt,it,xm}``): methods in the paper's order x seven benchmarks,
  one table per scenario; Fed-CMP rows use only runs at its defaults.
* Table 3 (``table3_ablation``): Fed-CMP module ablation rows (see ``runs.ablation_label``), II only.
* Table 4 (``table4_rwf``): RWF components and lambda (see ``runs.rwf_label``).
* Table 9 (``table9_clusters``): cluster sizes from a stats CSV (``fedma data stats`` output).
* ``clients_<scenario>``: samples per client and source cluster for K clients dealt from the clusters
  (:mod:`harness.report.clients`).
Each cell is mean ± std over the runs (seeds) that share the row; ``--paper`` adds "(paper)" columns.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from harness.report.instruct import instruct_tables, is_instruct
from harness.report.paper_rows import PAPER_DIR, read_rows
from harness.report.runs import (
    BENCHMARKS,
    Run,
    ablation_label,
    is_default_variant,
    main_row,
    pretty_name,
    row_order,
    rwf_label,
    score,
    score_se,
)
from harness.report.cells import Cell, Table, fmt, mean_std, rank_styles

SCENARIO_TABLE = {"II": 1, "TT": 2, "IT": 7, "XM": 8}
ABLATION_ROWS = ["none", "csc", "rwf", "opm", "csc+rwf", "csc+opm", "csc+rwf+opm"]
ABLATION_BENCHES = ["llava_bench", "mmvet", "mmbench"]
RWF_ROWS = ["no_rwf", "rwf_mag", "rwf_qua", "lambda=0.5", "lambda=1.0", "lambda=2.0"]
RWF_BENCHES = ["mmvet", "mmbench"]


def build_table(name: str, title: str, row_label: str, rows: list[str], pretty: dict[str, str],
                groups: dict[str, list[Run]], benches: list[str], round_sel, paper: dict | None = None
                ) -> Table:
    """Rows ``rows`` (only those with runs or paper numbers) x ``benches``; ``paper[(row, bench)]``."""
    rows = [r for r in rows if r in groups or (paper and any((r, b) in paper for b in benches))]
    header = [row_label]
    columns, ranked, marks, noisy = [], [], [], False
    for b in benches:
        stats = [mean_std([score(run, b, round_sel) for run in groups.get(r, [])]) for r in rows]
        near = within_noise([m for m, _ in stats], [_mean_se(groups.get(r, []), b, round_sel) for r in rows])
        noisy = noisy or any(near)
        header.append(BENCHMARKS[b])
        columns.append([fmt(m, s) for m, s in stats])
        ranked.append(rank_styles([m for m, _ in stats]))
        marks.append(["≈" if close else "" for close in near])
        if paper is not None:
            header.append(f"{BENCHMARKS[b]} (paper)")
            columns.append([fmt(paper.get((r, b)), None) for r in rows])
            ranked.append([""] * len(rows))
            marks.append([""] * len(rows))
    table = Table(name, title, header)
    for i, r in enumerate(rows):
        table.rows.append([Cell(pretty.get(r, r))] + [Cell(col[i], st[i], mk[i])
                                                       for col, st, mk in zip(columns, ranked, marks)])
    if noisy:
        table.note = NOISE_NOTE
    return table


NOISE_NOTE = ("≈: within two question-sampling standard errors of one run's score (binomial over the benchmark's "
              "questions) of the column's best: a difference the benchmark's size cannot tell from noise.")


def within_noise(means: list, ses: list) -> list[bool]:
    """Per row: not the column's best, yet less than two of the best's sampling SEs below it."""
    scored = [(m, se) for m, se in zip(means, ses) if m is not None]
    if len(scored) < 2:
        return [False] * len(means)
    best, best_se = max(scored, key=lambda x: x[0])
    if best_se is None:
        return [False] * len(means)
    return [m is not None and m != best and best - m < 2 * best_se for m in means]


def _mean_se(runs: list[Run], bench: str, round_sel) -> float | None:
    ses = [score_se(run, bench, round_sel) for run in runs]
    ses = [s for s in ses if s is not None]
    return sum(ses) / len(ses) if ses else None


def group_runs(runs: list[Run], key: Callable[[Run], str | None]) -> dict[str, list[Run]]:
    groups = defaultdict(list)
    for run in runs:
        k = key(run)
        if k is not None:
            groups[k].append(run)
    return dict(groups)


def main_tables(runs: list[Run], round_sel="final", paper: bool = False) -> list[Table]:
    """Tables 1, 2, 7, 8: one per scenario present in ``runs``."""
    from harness.core.registry import METHODS
    ref = read_paper_main() if paper else None
    tables = []
    scenarios = sorted({r.scenario for r in runs}, key=lambda s: (SCENARIO_TABLE.get(s, 99), s))
    for sc in scenarios:
        groups = group_runs([r for r in runs if r.scenario == sc], main_row)
        keys = row_order([*METHODS, *groups])
        pretty = {k: pretty_name(k) for k in keys}
        num = SCENARIO_TABLE.get(sc)
        name = f"table{num}_{sc.lower()}" if num else f"main_{sc.lower()}"
        sub = {(m, b): v for (s, m, b), v in ref.items() if s == sc} if ref is not None else None
        tables.append(build_table(name, f"Scenario {sc}: final-round scores" if round_sel == "final" else
                                  f"Scenario {sc}: round {round_sel} scores", "Method", keys, pretty,
                                  groups, list(BENCHMARKS), round_sel, sub))
    return tables


def ablation_tables(runs: list[Run], round_sel="final", paper: bool = False) -> list[Table]:
    """Tables 3 and 4 from the II-scenario runs; written only when some Fed-CMP run is not at its defaults
    (a sweep of variants); the default Fed-CMP run is then row ``csc+rwf+opm`` and ``lambda=1.0``."""
    ii = [r for r in runs if r.scenario == "II"]
    if not any(not is_default_variant(r) and (ablation_label(r) or rwf_label(r)) for r in ii):
        return []
    tables = []
    g3 = group_runs(ii, ablation_label)
    if g3:
        ref = _read_csv_values(PAPER_DIR / "reference_ablation_table3.csv", "modules") if paper else None
        tables.append(build_table("table3_ablation", "Ablation of Fed-CMP's modules (II)", "Modules",
                                  ABLATION_ROWS, {}, g3, ABLATION_BENCHES, round_sel, ref))
    g4 = group_runs(ii, rwf_label)
    if g4:
        ref = _read_csv_values(PAPER_DIR / "reference_rwf_table4.csv", "setting") if paper else None
        extra = sorted(set(g4) - set(RWF_ROWS))
        tables.append(build_table("table4_rwf", "RWF components and lambda (II)", "Setting", RWF_ROWS + extra,
                                  {}, g4, RWF_BENCHES, round_sel, ref))
    return tables


def cluster_table(stats_csv, paper: bool = False) -> Table:
    """Table 9: one row per scenario, one column per cluster, cells ``count (percent%)``."""
    rows = read_rows(Path(stats_csv))
    ref = {(r["scenario"].upper(), r["cluster"]): r for r in read_rows(PAPER_DIR /
           "reference_cluster_stats_table9.csv")} if paper else {}
    clusters = sorted({r["cluster"] for r in rows}, key=int)
    table = Table("table9_clusters", "Cluster statistics", ["Scenario"] + [f"Cluster {c}" for c in clusters])
    for sc in sorted({r["scenario"].upper() for r in rows}, key=lambda s: (SCENARIO_TABLE.get(s, 99), s)):
        by = {r["cluster"]: r for r in rows if r["scenario"].upper() == sc}
        cells = [Cell(sc)]
        for c in clusters:
            r = by.get(c)
            text = "n/a" if r is None else f"{r['count']} ({float(r['percent']):.2f}%)"
            if (sc, c) in ref:
                text += f" [paper: {ref[(sc, c)]['count']} ({float(ref[(sc, c)]['percent']):.2f}%)]"
            cells.append(Cell(text))
        table.rows.append(cells)
    return table


def read_paper_main() -> dict:
    """{(scenario, method, benchmark): value} from ``results/paper/reference_main_tables.csv``."""
    return {(r["scenario"].upper(), r["method"], r["benchmark"]): float(r["value"])
            for r in read_rows(PAPER_DIR / "reference_main_tables.csv") if r["value"] not in ("", "n/a")}


def _read_csv_values(path: Path, key: str) -> dict:
    out = {}
    for r in read_rows(path):
        for b, v in r.items():
            if b in BENCHMARKS and v not in ("", "n/a", None):
                out[(r[key], b)] = float(v)
    return out


def all_tables(runs: list[Run], round_sel="final", paper: bool = False, stats_csv=None) -> list[Table]:
    stage1 = [r for r in runs if not is_instruct(r)]
    tables = main_tables(stage1, round_sel, paper) + ablation_tables(stage1, round_sel, paper)
    from harness.report.clients import client_tables
    from harness.report.comm import comm_tables
    tables += comm_tables(stage1) + client_tables(stage1) + instruct_tables(runs, paper)
    if stats_csv is not None and Path(stats_csv).exists():
        tables.append(cluster_table(stats_csv, paper))
    return tables
