"""``fedma tune CONFIG --methods a,b --trials N --seeds S,.. --out DIR``: equal tuning budgets.

    fedma tune mini --methods fedavg,fedavg_ta,fedadam,fedavgm,fedcmp --trials 12 --seeds 1000,1001 \\
        --out results/tune/mini                                  # local worker processes
    fedma tune mini ... --profile mycluster --out /runs/tune      # each batch a Slurm job array
    fedma sweep results/tune/mini/tuned.yaml --methods fedavg,fedcmp --seeds 0,1,2 --out /runs/eval

Rerun the same command to continue a stopped tuning run. See :mod:`harness.tune.runner`; this module
composes it with the launchers (each batch as a Slurm job array through ``fedma sweep``'s launcher).
"""
from __future__ import annotations

from pathlib import Path


def _csv(text: str):
    return [x.strip() for x in text.split(",") if x.strip()]


def slurm_executor(args, console):
    """Submit a batch as one job array through ``fedma sweep``'s launcher and wait for it."""
    from launchers.cli import launch

    def execute(method, jobs, trials):
        out = Path(next(iter(jobs))).parents[2]            # OUT/runs/<method>
        base = next(iter(jobs.values()))
        common = [o for o in base if not o.startswith(("method=", "federation.seed=", f"aggregator.{method}."))]
        variants = {t.name: [f"aggregator.{method}.{k}={v}" for k, v in t.params.items()] for t in trials}
        request = {"config": args.config, "overrides": common, "methods": [method], "scenarios": [args.scenario],
                   "seeds": [str(s) for s in args.seeds], "variants": variants, "profile": args.profile,
                   "set": args.profile_set, "mode": "sbatch" if args.sbatch else "submitit", "cluster": args.cluster}
        launch(request, out, console, dry_run=False, wait=True)
    return execute


def cmd_tune(args) -> int:
    from rich.console import Console
    from harness.core.errors import ConfigError
    from harness.core.registry import method_entry
    from harness.tune.runner import TuneConfig, local_executor, tune
    console = Console(soft_wrap=True, highlight=False)
    for m in args.methods:
        method_entry(m)
    if args.trials < 1 or not args.seeds:
        raise ConfigError(f"--trials {args.trials} --seeds {args.seeds}: at least one trial and one tuning seed")
    cfg = TuneConfig(args.config, args.methods, [int(s) for s in args.seeds], args.trials, args.overrides,
                     args.scenario, args.batch, args.sampler_seed, args.validation)
    execute = slurm_executor(args, console) if args.profile else local_executor(args.config, args.workers, console)
    best = tune(cfg, args.out, execute, console)
    for m in args.methods:
        b = best.get(m)
        console.print(f"{m}: " + (f"best {b.name} {b.params} -> {b.value:.5f}" if b else "no finished trial"))
    console.print(f"written: {args.out}/tuned.yaml, trials.csv, tune.md, tune.json")
    return 0 if all(m in best for m in args.methods) else 1


def add_parser(parser) -> None:
    parser.add_argument("config", help="the config to tune (packaged name or YAML path)")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides for every run")
    parser.add_argument("--methods", type=_csv, required=True, help="comma-separated methods (fedma methods)")
    parser.add_argument("--trials", type=int, default=12, help="trials per method, trial 0 its defaults (default 12)")
    parser.add_argument("--seeds", type=_csv, required=True, help="tuning seeds, never the evaluation seeds")
    parser.add_argument("--scenario", default="ii", help="the scenario tuned on (default ii)")
    parser.add_argument("--out", required=True, help="output folder (trials, tuned.yaml, runs)")
    parser.add_argument("--batch", type=int, default=2, help="trials asked and run at once (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="local: runs side by side, one thread each")
    parser.add_argument("--validation", default=None, help="validation rows (a shard directory); the mini "
                        "preset's are generated")
    parser.add_argument("--sampler-seed", type=int, default=0, help="the TPE sampler's seed (default 0)")
    parser.add_argument("--profile", default=None, help="a cluster profile: run each batch as a Slurm job array")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="profile_set",
                        help="override profile values")
    parser.add_argument("--cluster", choices=["slurm", "local"], default=None, help="submitit executor")
    parser.add_argument("--sbatch", action="store_true", help="submit from the plain sbatch template")
    parser.set_defaults(func=cmd_tune)
