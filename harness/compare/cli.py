"""``fedma compare ROOT --reference fedavg``: paired comparisons of every method against a reference.

    fedma compare results/study-v1 --reference fedavg                     # final benchmark index
    fedma compare runs/sweep --reference fedavg --metric loss --summary auc --out runs/sweep/compare
    fedma compare runs/sweep --reference fedavg --summary to_threshold --threshold 0.2 --metric loss
    fedma compare results/study-v1 --reference fedavg --family plan/family.yaml

Writes ``OUT/compare.csv`` (one line per method, setting and scenario, and pooled), ``compare.md`` and
``compare.tex``; prints the Markdown. Definitions: SPEC section 7 and :mod:`harness.compare.stats`.
"""
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
    from harness.typecheck import bad_choice
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


def cmd_compare(args) -> int:
    from harness.report.render import to_markdown
    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    out = args.out or str(Path(args.root) / "compare")
    effects = [float(e) for e in args.power.split(",")] if args.power else None
    tables = run_compare(args.root, args.reference, metrics, args.summary, out, args.family, args.threshold,
                         effects)
    print("\n".join(to_markdown(t) for t in tables))
    print(f"written: {out}/compare.csv, compare.md, compare.tex")
    return 0


def add_parser(parser) -> None:
    parser.add_argument("root", help="a sweep or study root (run directories, or a study's runs.csv)")
    parser.add_argument("--reference", required=True, help="the row every other row is compared with (e.g. fedavg)")
    parser.add_argument("--metric", default="index", help="index (default), loss, validation or a benchmark "
                        "(pope, mme, ...); comma-separated for several tables")
    parser.add_argument("--summary", default="final", help="final (default), auc, best, to_threshold, oscillation")
    parser.add_argument("--threshold", type=float, default=None, help="to_threshold: the value to reach (default: "
                        "95%% of the reference's mean final value per scenario)")
    parser.add_argument("--family", default=None, help="YAML {family: ['METHOD SCENARIO [SETTING]', ...]}: the "
                        "lines adjusted together (default: every line of a table)")
    parser.add_argument("--power", default=None, metavar="EFFECTS", help="comma-separated effect sizes: write "
                        "power.md, the seeds each would need given the measured spread")
    parser.add_argument("--out", default=None, help="output folder (default: ROOT/compare)")
    parser.set_defaults(func=cmd_compare)
