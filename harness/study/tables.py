"""A study's tables (``results/study/tables``, CSV, LaTeX and Markdown): the main comparison per setting and
scenario, Table 3 per reading of CSC, Table 4, the oscillation table, and the paired comparisons with
FedAvg; cells are mean ± std over the seeds, the paper's numbers beside ours where it has them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from harness.core.benchmarks import MINI_SCORED as SCORED, PRETTY as BENCHMARKS
from harness.report.cells import Cell, Table, fmt, mean_std, rank_styles
from harness.report.paper_rows import PAPER_DIR
from harness.report.tables import _read_csv_values, read_paper_main
from harness.study.runner import RunSpec
from harness.study.spec import Arm, StudyConfig, arm
from harness.study.stats import HIGHER_IS_BETTER, Summary, paired

METRICS = ["loss", "index", *SCORED]
LABEL = {"loss": "held-out loss", "index": "benchmark index", **{b: BENCHMARKS[b] for b in SCORED}}
DIGITS = {"loss": 3, "index": 3}
FEDAVG = arm("fedavg")


@dataclass
class Results:
    cfg: StudyConfig
    summaries: Dict[RunSpec, Summary]

    def values(self, setting: str, scenario: str, a: Arm, metric: str, kind: str = "final") -> List[Optional[float]]:
        """One value per seed (None where the run is missing): the final value or the oscillation."""
        out = []
        for seed in self.cfg.seeds:
            s = self.summaries.get(RunSpec(setting, scenario, seed, a))
            out.append(None if s is None else (s.final(metric) if kind == "final" else s.oscillation(metric)))
        return out

    def has(self, setting: str, scenario: str, a: Arm) -> bool:
        return any(RunSpec(setting, scenario, seed, a) in self.summaries for seed in self.cfg.seeds)

    def places(self, family: str) -> List[tuple]:
        """(setting, scenario) pairs where the config runs ``family``, in config order."""
        return [(st, sc) for st, scs in self.cfg.where(family).items() for sc in scs]


def ranked_column(means: List[Optional[float]], higher: bool, digits: int) -> List[str]:
    return rank_styles([None if m is None else (m if higher else -m) for m in means], digits)


def metric_table(name: str, title: str, row_label: str, rows: List[tuple], res: Results, setting: str,
                 scenario: str, kind: str = "final", paper: Optional[dict] = None, paper_benches=()) -> Table:
    header = [row_label, *(LABEL[m] for m in METRICS), *(f"{BENCHMARKS[b]} (paper)" for b in paper_benches)]
    table = Table(name, title, header)
    rows = [(label, a) for label, a in rows if res.has(setting, scenario, a)]
    stats = {m: [mean_std(res.values(setting, scenario, a, m, kind)) for _, a in rows] for m in METRICS}
    styles = {m: ranked_column([mu for mu, _ in stats[m]], HIGHER_IS_BETTER[m] if kind == "final" else False,
                               DIGITS.get(m, 1)) for m in METRICS}
    for i, (label, _) in enumerate(rows):
        cells = [Cell(label)] + [Cell(fmt(*stats[m][i], DIGITS.get(m, 1)), styles[m][i]) for m in METRICS]
        cells += [Cell(fmt((paper or {}).get((label, b)), None)) for b in paper_benches]
        table.rows.append(cells)
    return table


def main_tables(res: Results, kind: str = "final") -> List[Table]:
    """One table per (setting, scenario) with main runs; ``kind="oscillation"``: the sums of drops."""
    from harness.study.spec import main_rows
    ref = read_paper_main()
    rows = main_rows()
    tables = []
    for setting, scenario in res.places("main"):
        paper = {(label, b): ref.get((scenario.upper(), a.method, b)) for label, a in rows if not a.hparams
                 for b in SCORED} if kind == "final" else None
        what = "final-round scores" if kind == "final" else "oscillation (sum of round-to-round drops; loss: rises)"
        tables.append(metric_table(f"{'main' if kind == 'final' else 'oscillation'}_{setting}_{scenario}",
                                   f"{scenario.upper()}, {setting}: {what}", "Method", rows, res, setting,
                                   scenario, kind, paper, tuple(SCORED) if kind == "final" else ()))
    return tables


def ablation_tables(res: Results) -> List[Table]:
    """Table 3 per reading and Table 4, on every (setting, scenario) that has their runs."""
    t3 = _read_csv_values(PAPER_DIR / "reference_ablation_table3.csv", "modules")
    t4 = _read_csv_values(PAPER_DIR / "reference_rwf_table4.csv", "setting")
    tables = []
    for family in ("table3", "table4"):
        for name, rows in res.cfg.family_rows(family).items():
            for setting, scenario in res.places(family):
                paper, benches = (t3, ("llava_bench", "mmvet", "mmbench")) if family == "table3" else \
                    (t4, ("mmvet", "mmbench"))
                title = (f"Table 3, CSC read as '{name.split('_', 1)[1]}' ({scenario.upper()}, {setting})"
                         if family == "table3" else f"Table 4: RWF components and lambda ({scenario.upper()}, {setting})")
                tables.append(metric_table(f"{name}_{setting}_{scenario}", title, "Setting", rows, res, setting,
                                           scenario, "final", paper, benches))
    return tables


def paired_table(res: Results, setting: str, rows: List[tuple], scenarios: List[str]) -> Table:
    """Each arm minus FedAvg on the same seeds, pooled over ``scenarios``: benchmark index and held-out loss."""
    header = ["Arm", "pairs", "Δ index (95% CI)", "p", "better", "Δ loss (95% CI)", "p (loss)", "better (loss)"]
    table = Table(f"paired_{setting}_{'_'.join(scenarios)}", f"Against FedAvg, same seeds and data "
                  f"({', '.join(s.upper() for s in scenarios)}, {setting})", header)
    for label, a in rows:
        if a == FEDAVG:
            continue
        cells = [Cell(label)]
        for metric in ("index", "loss"):
            mine = [v for sc in scenarios for v in res.values(setting, sc, a, metric)]
            base = [v for sc in scenarios for v in res.values(setting, sc, FEDAVG, metric)]
            cells += paired_cells(paired(mine, base, HIGHER_IS_BETTER[metric]), DIGITS[metric], with_n=metric == "index")
        table.rows.append(cells)
    return table


def paired_cells(p, digits: int, with_n: bool) -> List[Cell]:
    if p is None:
        return [Cell("n/a")] * (4 if with_n else 3)
    ci = f"{p.mean:+.{digits}f} [{p.low:+.{digits}f}, {p.high:+.{digits}f}]" + (" (identical)" if p.identical else "")
    cells = [Cell(ci), Cell(f"{p.p:.3f}"), Cell(f"{p.wins}/{p.n}")]
    return ([Cell(str(p.n))] if with_n else []) + cells


def all_tables(res: Results) -> List[Table]:
    tables = main_tables(res) + main_tables(res, "oscillation") + ablation_tables(res)
    arms = list(dict.fromkeys(a for family in ("main", "table3", "table4")
                              for rows in res.cfg.family_rows(family).values() for _, a in rows))
    for setting in dict.fromkeys(s.setting for s in res.summaries):
        scenarios = list(dict.fromkeys(s.scenario for s in res.summaries if s.setting == setting))
        present = [(a.key, a) for a in arms if any(s.setting == setting and s.arm == a for s in res.summaries)]
        tables.append(paired_table(res, setting, present, scenarios))
    return tables
