"""``fedma sweep``: method x scenario x seed x variant as a Slurm job array (or sbatch scripts).

Examples::

    fedma sweep tiny data.root=DATA --methods fedavg,fedcmp --seeds 0,1 --out runs/s --profile local --wait
    fedma sweep paper data.root=/data/{scenario} --methods fedcmp --scenarios ii,tt,it,xm --seeds 0,1,2 \\
        --variant rank64 aggregator.fedcmp.rank=64 --out /runs/paper --dry-run
"""
from __future__ import annotations

import argparse


def _csv(text: str):
    return [x.strip() for x in text.split(",") if x.strip()]


def add_sweep_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="packaged name (tiny, mini, paper) or YAML path")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides for every run")
    parser.add_argument("--out", required=True, help="sweep root: runs go to ROOT/SCENARIO/METHOD[+VARIANT]/seedS")
    parser.add_argument("--methods", type=_csv, help="comma-separated (default: the config's method)")
    parser.add_argument("--scenarios", type=_csv, help="comma-separated ii,tt,it,xm (default: the config's)")
    parser.add_argument("--seeds", type=_csv, help="comma-separated (default: the config's seed)")
    parser.add_argument("--variant", nargs="+", action="append", metavar="NAME [KEY=VALUE ...]", default=[],
                        help="a named set of extra overrides (repeatable): --variant rank8 aggregator.fedcmp.rank=8")
    parser.add_argument("--profile", help="cluster profile in slurm/profiles (default: the config's launch.profile, "
                        "else local)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="profile_set",
                        help="override profile values (partition=gpu time_min=600 ...)")
    parser.add_argument("--cluster", choices=["slurm", "local"], default=None,
                        help="submitit executor (default: auto-detected, Slurm where its commands are found)")
    parser.add_argument("--sbatch", action="store_true", help="write RUN/job.sbatch per run instead of submitting")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, submit nothing")
    parser.add_argument("--wait", action="store_true", help="wait for every job and report")
    parser.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    from pathlib import Path

    from rich.console import Console

    from harness.config import load_config
    from harness.errors import HarnessError
    from launchers.profile import parse_set, resolve_profile
    from launchers.sweep import check_plan, describe, expand, submit, write_scripts

    console = Console(soft_wrap=True, highlight=False)
    base = load_config(args.config, args.overrides)
    profile = resolve_profile(base.launch, args.profile, parse_set(args.profile_set))
    variants = None
    if args.variant:
        variants = {}
        for name, *extra in args.variant:
            if "=" in name:
                raise HarnessError(f"--variant {name}: the first word is the variant's name, then KEY=VALUE items")
            variants[name] = extra
    root = Path(args.out).resolve()
    plan = expand(args.config, root, args.methods or [base.aggregator.method],
                  args.scenarios or [base.data.scenario], [int(s) for s in (args.seeds or [base.federation.seed])],
                  args.overrides, variants)
    check_plan(plan)
    for line in describe(plan, profile):
        console.print(line, markup=False)
    if args.dry_run or not plan.todo:
        return 0
    if args.sbatch:
        for path in write_scripts(plan, profile):
            console.print(f"wrote {path}", markup=False)
        return 0
    jobs = submit(plan, profile, root / "slurm", cluster=args.cluster)
    console.print(f"submitted {len(jobs)} job(s): {', '.join(job.job_id for _, job in jobs)}", markup=False)
    if not args.wait:
        return 0
    failed = 0
    for run, job in jobs:
        try:
            job.results()
            console.print(f"[green]done[/] {run.name}")
        except Exception as e:   # one failed run does not hide the others
            failed += 1
            console.print(f"[red]failed[/] {run.name}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    if failed:
        raise HarnessError(f"{failed} of {len(jobs)} run(s) failed; their logs are under {root / 'slurm'}; "
                           f"re-run the same sweep to resume them")
    return 0
