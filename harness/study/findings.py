"""The paper's claims, each tested by paired comparisons fixed here before any study result was seen.

Rule, per comparison of arm A with arm B on the same seeds and data, on the final benchmark index (the
primary metric: what the paper's tables score) and the final held-out caption loss (secondary):
``holds`` when A is better and the paired t-test gives p < 0.05; ``does not hold`` when A is worse with
p < 0.05, or when A and B are identical (an exact identity, e.g. CSC alone at full rank with the mean
merge); otherwise ``cannot tell`` at this scale. Oscillation (the smoothness claim): lower is better.

Claims (paper's Sec. 5, Tables 3 and 4, Figure 4), per reading of CSC where it matters:
1. CSC helps: csc vs none, csc+rwf vs rwf, csc+opm vs opm;
2. RWF helps: rwf vs none, csc+rwf vs csc, csc+rwf+opm vs csc+opm (and Table 4: full vs its parts);
3. OPM helps: opm vs none, csc+opm vs csc, csc+rwf+opm vs csc+rwf;
4. the components are complementary: csc+rwf+opm vs every other row of Table 3;
5. Fed-CMP's path is the smoothest: Fed-CMP's oscillation vs every other main arm's, per setting;
6. Fed-CMP beats FedAvg (Tables 1, 2, 7, 8), per setting pooled over scenarios.
"""
from __future__ import annotations

from typing import List, Optional

from harness.study.spec import arm, main_rows, table3_rows, table4_rows
from harness.study.stats import HIGHER_IS_BETTER, Paired, paired
from harness.study.tables import Results

PRIMARY, SECONDARY = "index", "loss"


def verdict(p: Optional[Paired], higher_is_better: bool) -> str:
    if p is None:
        return "not run"
    if p.identical:
        return "does not hold (identical)"
    if p.p < 0.05:
        return "holds" if (p.mean > 0) == higher_is_better else "does not hold (reversed)"
    return "cannot tell"


def compare(res: Results, setting: str, scenarios: List[str], a, b, metric: str, kind: str = "final"
            ) -> Optional[Paired]:
    mine = [v for sc in scenarios for v in res.values(setting, sc, a, metric, kind)]
    base = [v for sc in scenarios for v in res.values(setting, sc, b, metric, kind)]
    higher = HIGHER_IS_BETTER[metric] if kind == "final" else False
    return paired(mine, base, higher)


def comparisons(res: Results) -> List[tuple]:
    """(claim, label, setting, scenarios, arm A, arm B, kind) for every comparison the study runs: the
    ablation claims where Table 3 (Table 4) runs, the others where the main comparison runs, pooled
    over the scenarios of a setting."""
    cfg, out = res.cfg, []
    t3, t4, main = cfg.where("table3"), cfg.where("table4"), cfg.where("main")
    for reading in cfg.readings:
        rows = dict(table3_rows(reading, cfg.rank))
        tag = f"[{reading}]"
        for claim, pairs in (("CSC helps", [("csc", "none"), ("csc+rwf", "rwf"), ("csc+opm", "opm")]),
                             ("RWF helps", [("rwf", "none"), ("csc+rwf", "csc"), ("csc+rwf+opm", "csc+opm")]),
                             ("OPM helps", [("opm", "none"), ("csc+opm", "csc"), ("csc+rwf+opm", "csc+rwf")]),
                             ("complementary", [("csc+rwf+opm", r) for r in rows if r != "csc+rwf+opm"])):
            for x, y in pairs:
                if reading != cfg.readings[0] and "csc" not in x + y:
                    continue                     # rows without CSC do not depend on the reading
                out += [(claim, f"{x} vs {y} {tag}", s, scs, rows[x], rows[y], "final") for s, scs in t3.items()]
    rwf = dict(table4_rows(cfg.lambdas))
    out += [("RWF helps", f"full vs {r} [Table 4]", s, scs, rwf["lambda=1.0"], rwf[r], "final")
            for r in ("no_rwf", "rwf_mag", "rwf_qua") for s, scs in t4.items()]
    fedcmp = arm("fedcmp")
    for s, scs in main.items():
        out += [("smoothest", f"Fed-CMP vs {label}", s, scs, fedcmp, a, "oscillation")
                for label, a in main_rows() if a != fedcmp]
        out.append(("beats FedAvg", "Fed-CMP vs FedAvg", s, scs, fedcmp, arm("fedavg"), "final"))
    return out


def findings(res: Results) -> List[dict]:
    rows = []
    for claim, label, setting, scenarios, a, b, kind in comparisons(res):
        row = {"claim": claim, "comparison": label, "setting": setting, "scenarios": scenarios}
        for metric in (PRIMARY, SECONDARY):
            p = compare(res, setting, scenarios, a, b, metric, kind)
            higher = HIGHER_IS_BETTER[metric] if kind == "final" else False
            row[metric] = None if p is None else {**p.__dict__, "verdict": verdict(p, higher)}
        if row[PRIMARY] is not None or row[SECONDARY] is not None:
            rows.append(row)
    return rows


def markdown(rows: List[dict], note: str) -> str:
    lines = [f"_{note}_", "", "Verdict rule (fixed before the results): A vs B on the same seeds and data; "
             "holds if A is better with paired p < 0.05, does not hold if A is worse with p < 0.05 or identical, "
             "else cannot tell. Δ is A − B (index: higher is better; loss and oscillation: lower is better).", ""]
    for claim in dict.fromkeys(r["claim"] for r in rows):
        lines += [f"## {claim}", "", "| comparison | setting | pairs | Δ index (95% CI) | p | verdict (index) | "
                  "Δ loss (95% CI) | p | verdict (loss) |", "|---|---|:-:|---|:-:|---|---|:-:|---|"]
        for r in (r for r in rows if r["claim"] == claim):
            cells = []
            for metric, digits in ((PRIMARY, 3), (SECONDARY, 3)):
                p = r[metric]
                cells += ["n/a", "", "not run"] if p is None else [
                    f"{p['mean']:+.{digits}f} [{p['low']:+.{digits}f}, {p['high']:+.{digits}f}]", f"{p['p']:.3f}",
                    p["verdict"]]
            n = (r[PRIMARY] or r[SECONDARY] or {}).get("n", 0)
            where = f"{r['setting']} ({', '.join(sc.upper() for sc in r['scenarios'])})"
            lines.append(f"| {r['comparison']} | {where} | {n} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
