"""``fedma study [CONFIG] --out DIR``: run (or continue) a study, then write its tables, figures and
findings (:mod:`harness.study.spec` for what runs; ``harness/study/configs/{paper,smoke}.yaml``).

    fedma study paper --out results/study            # hours on 2 cores; rerun to continue after a stop
    fedma study paper --out results/study --dry-run  # the plan: runs, finished, to run
    fedma study paper --out results/study --report   # only rewrite the outputs from the finished runs
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

NOTE = ("Fed-MA-mini: the world is synthetic (five generated domains, a tiny pretrained LLaVA); its numbers "
        "are not comparable with the paper's, which stand beside them for the direction of each effect.")


def collect(cfg, out: Path):
    from harness.study.runner import finished, plan
    from harness.study.stats import summarize
    from harness.study.tables import Results
    specs = [s for s in plan(cfg) if finished(s.path(out))]
    return Results(cfg, {s: summarize(s.path(out)) for s in specs})


def write_outputs(res, out: Path, console) -> None:
    from harness.report.render import to_markdown, write_tables
    from harness.study.figures import all_figures
    from harness.study.findings import findings, markdown
    from harness.study.tables import all_tables
    tables = all_tables(res)
    for t in tables:
        t.note = NOTE
    write_tables(tables, ["csv", "latex", "md"], out / "tables")
    (out / "tables.md").write_text("\n".join(to_markdown(t) for t in tables))
    rows = findings(res)
    (out / "findings.md").write_text(markdown(rows, NOTE))
    (out / "findings.json").write_text(json.dumps(rows, indent=1))
    write_runs_csv(res, out / "runs.csv")
    figures = all_figures(res, out / "figures")
    console.print(f"{len(res.summaries)} finished runs -> {len(tables)} tables, {len(figures)} figures, "
                  f"{len(rows)} comparisons in {out}/findings.md")


def write_runs_csv(res, path: Path) -> None:
    from harness.study.tables import METRICS
    fields = ["setting", "scenario", "seed", "arm", *(f"final_{m}" for m in METRICS),
              *(f"oscillation_{m}" for m in METRICS), "wall_s"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for spec, s in res.summaries.items():
            w.writerow({"setting": spec.setting, "scenario": spec.scenario, "seed": spec.seed, "arm": spec.arm.key,
                        **{f"final_{m}": s.final(m) for m in METRICS},
                        **{f"oscillation_{m}": s.oscillation(m) for m in METRICS}, "wall_s": round(s.wall_s, 1)})


def cmd_study(args) -> int:
    from rich.console import Console
    from harness.study.runner import run_study
    from harness.study.spec import load_study
    console = Console()
    cfg = load_study(args.config)
    out = Path(args.out)
    if args.tune:
        from harness.study.tuning import run_tuning
        run_tuning(cfg, out, args.workers, console)
        return 0
    if args.verify:
        from harness.study.evidence import verify
        return 0 if verify(cfg, out, args.verify, args.workers, console) else 1
    if not args.report:
        run_study(cfg, out, args.workers, console, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    if cfg.comparisons:                 # a planned study: everything from its archived records
        from harness.study.planned import write_planned
        write_planned(cfg, out, NOTE, console)
    else:
        write_outputs(collect(cfg, out), out, console)
    return 0


def add_parser(parser) -> None:
    parser.add_argument("config", nargs="?", default="paper", help="a packaged study (paper, smoke) or a YAML path")
    parser.add_argument("--out", default="results/study")
    parser.add_argument("--workers", type=int, default=2, help="runs side by side, one thread each")
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    parser.add_argument("--report", action="store_true", help="only write the outputs from finished runs")
    parser.add_argument("--tune", action="store_true", help="run the config's tuning stage (fedma tune on the "
                        "study's worlds and tuning seeds) into OUT/tune")
    parser.add_argument("--verify", type=int, default=0, metavar="N", help="rerun N archived runs at this code "
                        "and compare their records (bit for bit on the same machine and build)")
    parser.set_defaults(func=cmd_study)
