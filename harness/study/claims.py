"""A planned study's findings: each planned comparison through ``fedma compare``'s statistics, the verdict
on Holm's p over the plan's family.

A comparison in the plan (``comparisons:`` of the study config) names a claim, arm A and arm B (aliases
or keys), a setting, its scenarios, whether a pooled line is wanted, and its family (``primary`` or
``secondary``). For every metric of the plan (``metrics``: the primary METRIC:SUMMARY pairs; then
``secondary_metrics``), each comparison gives one line per scenario and a pooled one: the mean of A - B
over the pairs, its bootstrap interval and exact sign-flip p. A line is in the primary family when its
comparison is primary and its metric is primary; Holm's adjustment runs over the whole primary family
at once (every primary comparison on every primary metric), and separately over the secondary lines.
"""
from __future__ import annotations

from typing import List, Tuple

from harness.compare.observations import Observation
from harness.compare.table import POOLED, Line, adjust, compare


def planned_lines(cfg, observations: List[Observation]) -> List[Tuple[str, str, Line]]:
    """(claim, "A vs B", line) for every line of every planned comparison, adjusted."""
    lines = []
    tiers = [(m, "primary") for m in cfg.metrics] + [(m, "secondary") for m in cfg.secondary_metrics]
    for c in cfg.comparisons:
        a, b = cfg.arm_of(c["a"]).key, cfg.arm_of(c["b"]).key
        scenarios = c.get("scenarios", ["ii"])
        subset = [o for o in observations if o.row in (a, b) and o.setting == c["setting"] and o.scenario in scenarios]
        if not {o.row for o in subset} >= {a, b}:
            continue
        for spec, tier in tiers:
            metric, summary = spec.split(":")
            for line in compare(subset, b, metric, summary):
                if line.method != a or (line.scenario == POOLED and not c.get("pooled", True)):
                    continue
                line.family = "primary" if tier == "primary" and c.get("family") == "primary" else "secondary"
                lines.append((c["claim"], f"{c['a']} vs {c['b']}", line))
    adjust([line for _, _, line in lines])
    return lines


def findings(cfg, observations: List[Observation]) -> List[dict]:
    """One dict per line: claim, comparison, family and the statistics (for findings.json)."""
    return [{"claim": claim, "comparison": label, **line.as_row()}
            for claim, label, line in planned_lines(cfg, observations)]


def markdown(rows: List[dict], note: str) -> str:
    """Per claim, a table of its lines: Δ with interval, p, Holm p, better/worse and the verdict."""
    lines = [f"_{note}_", "", "Verdict rule (in the plan, committed before the runs): holds when Holm's adjusted p "
             "< 0.05 over the family and A is better; does not hold when Holm's p < 0.05 with A worse, or A and B "
             "are identical on every pair; cannot tell otherwise. Δ = A − B on the same setting, scenario and seed "
             "(loss, rounds and oscillation: lower is better). The primary family is every primary comparison on "
             "every primary metric, adjusted together.", ""]
    for claim in dict.fromkeys(r["claim"] for r in rows):
        lines += [f"## {claim}", "", "| comparison | family | setting | scenario | metric | pairs | Δ (95% CI) | p | "
                  "p Holm | better/worse | verdict |", "|---|---|---|:-:|---|:-:|---|:-:|:-:|:-:|---|"]
        for r in (r for r in rows if r["claim"] == claim):
            lines.append(f"| {r['comparison']} | {r['family']} | {r['setting']} | {r['scenario']} | "
                         f"{r['metric']} ({r['summary']}) | {r['n_pairs']} | {r['mean_diff']:+.4g} "
                         f"[{r['ci_low']:+.4g}, {r['ci_high']:+.4g}] | {r['p_perm']:.3g} | {r['p_holm']:.3g} | "
                         f"{r['better']}/{r['worse']} | {r['verdict']} |")
        lines.append("")
    return "\n".join(lines)
