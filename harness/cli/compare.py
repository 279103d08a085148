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


def cmd_compare(args) -> int:
    from harness.compare.run import run_compare
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
