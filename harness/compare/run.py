"""Running a comparison: every (metric, summary) table of a sweep or study root, written as CSV, Markdown
and LaTeX (``fedma compare``, :mod:`harness.cli.compare`), the seeds a power target needs, and the tables
of ``fedma report``'s page. Definitions: SPEC section 7 and :mod:`harness.compare.stats`."""
from __future__ import annotations

from pathlib import Path


def run_compare(root, reference: str, metrics, summary: str, out=None, family=None, threshold=None,
                effects=None) -> list:
    """Every (metric, summary) table, written to ``out`` when given (with ``power.md`` for ``effects``)."""
    from harness.compare.observations import check_metric, higher_is_better, load
    from harness.compare.render import to_table, write_csv
    from harness.compare.summaries import SUMMARIES, summary_higher_is_better
    from harness.compare.table import compare, read_families
    from harness.report.render import to_latex, to_markdown
    from harness.core.typecheck import bad_choice
    if summary not in SUMMARIES:
        raise bad_choice("--summary", summary, SUMMARIES)
    for m in metrics:
        check_metric(m)
    families = read_families(family) if family else None
    observations = load(root)
    lines, tables = [], []
    for metric in metrics:
        got = compare(observations, reference, metric, summary, threshold, families)
        lines += got
        tables.append(to_table(got, reference, summary_higher_is_better(summary, higher_is_better(metric)),
                               name=f"compare_{metric}_{summary}"))
    if out:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(lines, out / "compare.csv")
        (out / "compare.md").write_text("\n".join(to_markdown(t) for t in tables))
        (out / "compare.tex").write_text("\n".join(to_latex(t) for t in tables))
        if effects:
            (out / "power.md").write_text(power_markdown(lines, effects, family_size(lines)))
    return tables


def family_size(lines) -> int:
    """The largest family of one table (one metric and summary)."""
    key = lambda x: (x.metric, x.summary, x.family)     # noqa: E731
    return max((sum(1 for x in lines if key(x) == key(line)) for line in lines), default=1)


def power_markdown(lines, effects, family: int) -> str:
    """Seeds per scenario for each effect, from each method's within-scenario SD of differences."""
    from harness.compare.power import power_table, within_sd
    from harness.compare.table import POOLED
    rows = []
    for line in (x for x in lines if x.scenario == POOLED):
        scenario_lines = [x for x in lines if (x.method, x.setting, x.metric) == (line.method, line.setting,
                                                                                  line.metric) and x.scenario != POOLED]
        diffs = [d for x in scenario_lines for d in x.diffs]
        strata = [x.scenario for x in scenario_lines for _ in x.diffs]
        label = f"{line.method} {line.setting} ({line.metric}, {line.summary})".replace("  ", " ")
        rows.append((label, within_sd(diffs, strata)))
    return "\n".join([f"Pairs needed (seeds per scenario; seeds x scenarios for a pooled comparison) to detect a "
                      f"mean paired difference δ with power 0.8 at α = 0.05 "
                      f"(in brackets: at α / {family}, Holm's first step over a family of {family}); SD: the "
                      f"differences' seed-to-seed spread within a scenario, measured here.", "",
                      *power_table(rows, effects, family=family)]) + "\n"


def page_tables(paths, reference: str = "fedavg", summaries=("final", "auc")) -> list:
    """The comparison tables of ``fedma report``'s page: the benchmark index and the held-out loss against
    ``reference``, per summary; [] when the runs hold no reference or no pairs."""
    from harness.compare.observations import higher_is_better, load
    from harness.compare.render import to_table
    from harness.compare.summaries import summary_higher_is_better
    from harness.compare.table import compare
    observations = [o for p in paths for o in load(p)]
    if reference not in {o.row for o in observations}:
        return []
    tables = []
    for metric in ("index", "loss"):
        for summary in summaries:
            if not any(metric in o.curves or (metric, summary) in o.fixed for o in observations):
                continue
            lines = compare(observations, reference, metric, summary)
            if lines:
                higher = summary_higher_is_better(summary, higher_is_better(metric))
                tables.append(to_table(lines, reference, higher, name=f"compare_{metric}_{summary}"))
    return tables
