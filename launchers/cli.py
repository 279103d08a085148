"""``fedma sweep``: method x scenario x seed x variant as one Slurm job array (submitit, or ``--sbatch`` from
the plain template), then ``fedma sweep status ROOT`` and ``fedma sweep resubmit ROOT``.

Examples::

    fedma sweep tiny data.root=DATA --methods fedavg,fedcmp --seeds 0,1 --out runs/s --profile local --wait
    fedma sweep tiny data.root=DATA --methods fedavg,fedcmp --out runs/s --profile local --sbatch --wait
    fedma sweep paper data.root=/data/{scenario} --methods fedcmp --scenarios ii,tt,it,xm --seeds 0,1,2 \\
        --variant rank64 aggregator.fedcmp.rank=64 --out /runs/paper --dry-run
    fedma sweep status runs/s --watch          # each run's state, round, last record; live
    fedma sweep resubmit runs/s --wait         # the failed and unfinished runs again; they resume
"""
from __future__ import annotations

import argparse
from pathlib import Path

ACTIONS = ("status", "resubmit")


def _csv(text: str):
    return [x.strip() for x in text.split(",") if x.strip()]


def add_sweep_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="packaged name (tiny, mini, paper) or YAML path; or 'status ROOT' / "
                        "'resubmit ROOT' for a submitted sweep")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides for every run")
    parser.add_argument("--out", help="sweep root: runs go to ROOT/SCENARIO/METHOD[+VARIANT]/seedS")
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
    parser.add_argument("--sbatch", action="store_true", help="submit one job array from the plain sbatch "
                        "template (slurm/templates/torchrun.sbatch) instead of through submitit")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (and write the --sbatch script), "
                        "submit nothing")
    parser.add_argument("--wait", action="store_true", help="wait until every job has ended, then report")
    parser.add_argument("--watch", action="store_true", help="status: refresh until every run has ended")
    parser.add_argument("--json", action="store_true", help="status: one JSON object per run instead of the table")
    parser.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    from rich.console import Console
    from harness.core.errors import ConfigError
    console = Console(soft_wrap=True, highlight=False)
    if args.config in ACTIONS:
        if len(args.overrides) != 1:
            raise ConfigError(f"fedma sweep {args.config} ROOT: give the sweep's --out directory, one of it")
        root = Path(args.overrides[0]).resolve()
        return cmd_status(root, console, args.watch, args.json) if args.config == "status" else \
            cmd_resubmit(root, console, args.wait)
    if not args.out:
        raise ConfigError("fedma sweep: --out ROOT is required (the sweep root)")
    request = {"config": args.config, "overrides": args.overrides, "methods": args.methods, "scenarios": args.scenarios,
               "seeds": args.seeds, "variants": variants_of(args.variant), "profile": args.profile,
               "set": args.profile_set, "mode": "sbatch" if args.sbatch else "submitit", "cluster": args.cluster}
    return launch(request, Path(args.out).resolve(), console, args.dry_run, args.wait)


def variants_of(items):
    from harness.core.errors import HarnessError
    variants = {}
    for name, *extra in items:
        if "=" in name:
            raise HarnessError(f"--variant {name}: the first word is the variant's name, then KEY=VALUE items")
        variants[name] = extra
    return variants or None


def plan_of(request: dict, root: Path):
    """(plan, profile) of a sweep request: every config resolved now, before anything is submitted."""
    from harness.core.config import load_config
    from launchers.profile import parse_set, resolve_profile
    from launchers.sweep import check_plan, expand
    base = load_config(request["config"], request["overrides"])
    profile = resolve_profile(base.launch, request["profile"], parse_set(request["set"]))
    plan = expand(request["config"], root, request["methods"] or [base.aggregator.method],
                  request["scenarios"] or [base.data.scenario],
                  [int(s) for s in (request["seeds"] or [base.federation.seed])], request["overrides"],
                  request["variants"])
    check_plan(plan)
    return plan, profile


def launch(request: dict, root: Path, console, dry_run: bool, wait: bool, skip=()) -> int:
    """Submit the plan's unfinished runs (except those named in ``skip``, still queued); report, wait."""
    from launchers.sweep import describe, submit_array, submit_submitit, write_record
    plan, profile = plan_of(request, root)
    plan.runs = [r for r in plan.runs if r.name not in skip]
    for line in describe(plan, profile):
        console.print(line, markup=False)
    if dry_run:
        if request["mode"] == "sbatch" and plan.todo:
            console.print(f"wrote {submit_array(plan, profile, root, dry_run=True)[0].log}", markup=False)
        return 0
    if not plan.todo:
        return 0
    local = request["cluster"] == "local"
    if not local:
        from launchers.preflight import check_cluster
        check_cluster(profile)
    submitted = (submit_array(plan, profile, root) if request["mode"] == "sbatch"
                 else submit_submitit(plan, profile, root, cluster=request["cluster"]))
    write_record(root, request, submitted)
    console.print(f"submitted {len(submitted)} job(s): {', '.join(s.job_id for s in submitted)}", markup=False)
    if not wait:
        return 0
    if local:
        for s in submitted:        # a local executor's jobs are processes here, not Slurm jobs
            try:
                s.handle.results()
            except Exception:      # reported in the table below, with the log's last error
                pass
    return report(root, console, wait_first=not local)


def statuses(root: Path, wait_first: bool = False, console=None):
    from launchers.sweep import read_record
    from launchers.watch import ENDED, job_states, run_status, wait_jobs
    doc = read_record(root)
    plan, _ = plan_of(doc["request"], root)
    jobs = {r.name: doc["runs"].get(r.name) for r in plan.runs}
    ids = [j["job_id"] for j in jobs.values() if j and j["job_id"]]
    local = doc["request"]["cluster"] == "local"
    if wait_first and ids:
        with console.status(f"waiting for {len(ids)} job(s)") as spinner:
            states = wait_jobs(ids, on_poll=lambda st: spinner.update(
                f"waiting for {len(ids)} job(s): {sum(s in ENDED for s in st.values())} ended"))
    else:
        states = {} if local or not ids else job_states(ids)
    rows = []
    for r in plan.runs:
        job = jobs[r.name]
        state = (states.get(job["job_id"], "UNKNOWN") if not local else "UNKNOWN") if job else None
        rows.append(run_status(r.name, r.out, job["job_id"] if job else None, state, Path(job["log"]) if job else None))
    return rows


def report(root: Path, console, wait_first: bool) -> int:
    from launchers.watch import status_table
    rows = statuses(root, wait_first, console)
    console.print(status_table(rows, f"sweep {root}"))
    for r in rows:
        if r.state == "failed":
            console.print(f"failed {r.name}: {r.log}: {r.error}", markup=False)
    failed = [r for r in rows if r.state != "done"]
    if failed:
        console.print(f"[red]{len(failed)} of {len(rows)} run(s) not done[/]; `fedma sweep resubmit {root}` "
                      f"resubmits them (they resume from their checkpoints)")
    return 1 if failed else 0


def cmd_status(root: Path, console, watch: bool, as_json: bool = False) -> int:
    import json
    import time
    from rich.live import Live
    from launchers.watch import status_table
    rows = statuses(root)
    if as_json:
        for r in rows:
            print(json.dumps({**r.__dict__, "out": str(r.out), "log": str(r.log) if r.log else None}))
        return 0
    if not watch:
        console.print(status_table(rows, f"sweep {root}"))
        return 0
    with Live(status_table(rows, f"sweep {root}"), console=console, refresh_per_second=1) as live:
        while any(r.state in ("pending", "running", "requeued") for r in rows):
            time.sleep(3)
            rows = statuses(root)
            live.update(status_table(rows, f"sweep {root}"))
    return 0


def cmd_resubmit(root: Path, console, wait: bool) -> int:
    from launchers.sweep import read_record
    active = [r.name for r in statuses(root) if r.state in ("pending", "running", "requeued")]
    if active:
        console.print(f"still queued or running, not resubmitted: {', '.join(active)}", markup=False)
    return launch(read_record(root)["request"], root, console, dry_run=False, wait=wait, skip=active)
