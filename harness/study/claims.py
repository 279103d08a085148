"""A planned study's findings: each planned comparison through ``fedma compare``'s statistics, the verdict
on Holm's p over the plan's family.

A comparison in the plan (``comparisons:`` of the study config) names a claim, arm A and arm B (aliases
or keys), a setting, its scenarios, whether a pooled line is wanted, its family (``primary``, ``regimes``,
``secondary``, any name the plan declares) and optionally its own metrics (default: the plan's primary
``metrics``, METRIC:SUMMARY). On those metrics its lines belong to its family; on the plan's
``secondary_metrics`` they belong to ``secondary``. Each comparison gives one line per scenario and a
pooled one: the mean of A - B over the pairs, its bootstrap interval and exact sign-flip p. Holm's
adjustment runs over each family as a whole (e.g. every primary comparison on every primary metric at
once).

A comparison is evaluated only when every run the plan gives its two arms has finished: a study cut short
(its budget spent; blocks finish in config order) leaves the rest *not evaluated*, listed as such with
their finished and planned runs, never computed on fewer pairs. Their planned lines still count in their
family's adjustment, as p = 1 (see :func:`harness.compare.table.adjust`).
"""
from __future__ import annotations

from collections import Counter
from typing import List, Tuple

from harness.compare.observations import Observation
from harness.compare.table import POOLED, Line, adjust, compare


def planned_lines(cfg, observations: List[Observation]) -> List[Tuple[str, str, Line]]:
    """(claim, "A vs B", line) for every line of every evaluated planned comparison, adjusted."""
    from harness.study.runner import plan
    lines, absent, seen, runs = [], Counter(), set(), plan(cfg)
    for c in cfg.comparisons:
        a, b = cfg.arm_of(c["a"]).key, cfg.arm_of(c["b"]).key
        scenarios = c.get("scenarios", ["ii"])
        # two claims on the same pair of arms share their secondary lines: each hypothesis counts once
        tiers = [(m, tier) for m, tier in _tiers(cfg, c) if (a, b, c["setting"], tuple(scenarios), m) not in seen]
        seen.update((a, b, c["setting"], tuple(scenarios), m) for m, _ in tiers)
        subset = [o for o in observations if o.row in (a, b) and o.setting == c["setting"] and o.scenario in scenarios]
        finished, planned = progress(cfg, c, observations, runs)
        if not {o.row for o in subset} >= {a, b} or finished < planned:
            per_metric = len(scenarios) + (len(scenarios) > 1 and c.get("pooled", True))
            absent.update(tier for _, tier in tiers for _ in range(per_metric))
            continue
        for spec, tier in tiers:
            metric, summary = spec.split(":")
            for line in compare(subset, b, metric, summary):
                if line.method != a or (line.scenario == POOLED and not c.get("pooled", True)):
                    continue
                line.family = tier
                lines.append((c["claim"], f"{c['a']} vs {c['b']}", line))
    adjust([line for _, _, line in lines], dict(absent))
    return lines


def _tiers(cfg, c) -> List[Tuple[str, str]]:
    """The comparison's own metrics (or the plan's primary ones) in its family; the rest in "secondary"."""
    tiers = [(m, c.get("family", "secondary")) for m in c.get("metrics", cfg.metrics)]
    return tiers + [(m, "secondary") for m in cfg.secondary_metrics if m not in dict(tiers)]


def progress(cfg, c, observations: List[Observation], runs) -> Tuple[int, int]:
    """(finished, planned) runs of the comparison's two arms in its setting and scenarios; ``runs``: the
    study's plan (:func:`harness.study.runner.plan`)."""
    arms = {cfg.arm_of(c["a"]).key, cfg.arm_of(c["b"]).key}
    scenarios = c.get("scenarios", ["ii"])
    planned = {(r.arm.key, r.scenario, r.seed) for r in runs
               if r.setting == c["setting"] and r.scenario in scenarios and r.arm.key in arms}
    have = {(o.row, o.scenario, o.seed) for o in observations if o.setting == c["setting"]}
    return len(planned & have), len(planned)


def unevaluated(cfg, observations: List[Observation]) -> List[dict]:
    """The planned comparisons whose arms have not all finished: claim, A vs B, setting, family, runs."""
    from harness.study.runner import plan
    rows, runs = [], plan(cfg)
    for c in cfg.comparisons:
        finished, planned = progress(cfg, c, observations, runs)
        if finished < planned:
            rows.append({"claim": c["claim"], "comparison": f"{c['a']} vs {c['b']}", "setting": c["setting"],
                         "family": c.get("family", "secondary"), "finished": finished, "planned": planned})
    return rows


def findings(cfg, observations: List[Observation]) -> List[dict]:
    """One dict per line: claim, comparison, family and the statistics (for findings.json)."""
    return [{"claim": claim, "comparison": label, **line.as_row()}
            for claim, label, line in planned_lines(cfg, observations)]


def markdown(rows: List[dict], note: str, missing: List[dict] = ()) -> str:
    """Per claim, a table of its lines: Δ with interval, p, Holm p, better/worse and the verdict; then the
    planned comparisons not evaluated (``missing``, from :func:`unevaluated`)."""
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
    if missing:
        lines += ["## Not evaluated: their arms had not finished when the study stopped", "",
                  "Each one's planned lines count in its family's Holm adjustment as p = 1 (the family keeps its "
                  "planned size).", "", "| claim | comparison | family | setting | runs finished / planned |",
                  "|---|---|---|---|:-:|"]
        lines += [f"| {m['claim']} | {m['comparison']} | {m['family']} | {m['setting']} | "
                  f"{m['finished']} / {m['planned']} |" for m in missing]
        lines.append("")
    return "\n".join(lines)
