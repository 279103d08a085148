"""Sweeps: method x scenario x seed x variant, expanded into runs and submitted as one Slurm job array.

Each run gets its own directory ``ROOT/SCENARIO/METHOD[+VARIANT]/seedS`` and the overrides
``method=M scenario=S seed=N`` plus the variant's overrides after the sweep's own. A run whose
``final/`` directory exists is finished and skipped; an unfinished one is (re)submitted and resumes from
its last complete round, so re-running the same sweep after a failure completes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from harness.core.rundir import RunDir


@dataclass
class RunSpec:
    method: str
    scenario: str
    seed: int
    variant: Optional[str]
    overrides: List[str]
    out: Path
    finished: bool = False

    @property
    def name(self) -> str:
        label = self.method + (f"+{self.variant}" if self.variant else "")
        return f"{label}-{self.scenario}-s{self.seed}"


@dataclass
class Plan:
    config: str
    runs: List[RunSpec] = field(default_factory=list)

    @property
    def todo(self) -> List[RunSpec]:
        return [r for r in self.runs if not r.finished]

    @property
    def skipped(self) -> List[RunSpec]:
        return [r for r in self.runs if r.finished]


def is_finished(run_dir) -> bool:
    return RunDir(run_dir).has_final()


def expand(config: str, root, methods: Sequence[str], scenarios: Sequence[str], seeds: Sequence[int],
           overrides: Sequence[str] = (), variants: Optional[Dict[str, List[str]]] = None) -> Plan:
    """Every (method, scenario, seed, variant) as a :class:`RunSpec`, in that nesting order."""
    root = Path(root)
    plan = Plan(config)
    for scenario in scenarios:
        for method in methods:
            for variant, extra in (variants or {None: []}).items():
                for seed in seeds:
                    label = method + (f"+{variant}" if variant else "")
                    out = root / scenario / label / f"seed{seed}"
                    run_overrides = [*overrides, f"method={method}", f"scenario={scenario}", f"seed={seed}", *extra]
                    plan.runs.append(RunSpec(method, scenario, int(seed), variant, run_overrides, out,
                                             is_finished(out)))
    return plan


def check_plan(plan: Plan) -> None:
    """Resolve every run's config now, so a bad override fails before anything is submitted."""
    from harness.core.config import load_config
    for run in plan.runs:
        load_config(plan.config, run.overrides)


def describe(plan: Plan, profile) -> List[str]:
    lines = [f"sweep of {len(plan.runs)} run(s): {len(plan.todo)} to submit, {len(plan.skipped)} finished "
             f"(skipped); profile {profile.name}: {profile.nodes} node(s) x {profile.tasks_per_node} task(s), "
             f"{profile.gpus_per_node} GPU(s)/node, {profile.time_min} min, array parallelism "
             f"{profile.array_parallelism}"]
    for run in plan.runs:
        status = "skip (finished)" if run.finished else "submit"
        lines.append(f"  {status:16s} {run.name:32s} {run.out}  fedma run {plan.config} {' '.join(run.overrides)}")
    return lines


def submit(plan: Plan, profile, folder, cluster: Optional[str] = None, env: Optional[Dict[str, str]] = None,
           name: str = "fedma-sweep") -> List[Tuple[RunSpec, object]]:
    """Submit the unfinished runs as one job array; returns (run, submitit job) pairs."""
    from launchers.slurm import FedmaJob, make_executor
    todo = plan.todo
    if not todo:
        return []
    executor = make_executor(profile, folder, name=name, cluster=cluster)
    with executor.batch():
        jobs = [executor.submit(FedmaJob(plan.config, run.overrides, str(run.out), env)) for run in todo]
    return list(zip(todo, jobs))


@dataclass
class Submitted:
    run: RunSpec
    job_id: str
    log: Path                     # where the job's (rank 0's) errors go
    handle: object = None         # the submitit job, for --cluster local


def submit_submitit(plan: Plan, profile, root: Path, cluster: Optional[str] = None) -> List[Submitted]:
    from harness.core.errors import HarnessError
    from launchers.sbatch import first_error
    try:
        jobs = submit(plan, profile, root / "slurm", cluster=cluster)
    except Exception as e:   # submitit reports sbatch's refusal as a long multi-line error
        text = "\n".join(filter(None, [str(e), getattr(e, "stderr", "") or "", getattr(e, "output", "") or ""]))
        raise HarnessError(f"sbatch refused the job array: {first_error(text)}") from None
    return [Submitted(run, str(job.job_id), Path(job.paths.stderr), job) for run, job in jobs]


def submit_array(plan: Plan, profile, root: Path, python: Optional[str] = None, dry_run: bool = False) -> List[Submitted]:
    """The unfinished runs as one sbatch job array from the template (``ROOT/slurm/sweep-N.sbatch``);
    with ``dry_run`` the script is written and nothing is submitted."""
    from launchers.sbatch import render_array, submit_script
    folder = root / "slurm"
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / f"sweep-{len(list(folder.glob('sweep-*.sbatch'))):03d}.sbatch"
    script.write_text(render_array(profile, plan.config, [(r.overrides, str(r.out)) for r in plan.todo], folder,
                                   python=python))
    if dry_run:
        return [Submitted(r, "", script) for r in plan.todo]
    array = submit_script(script)
    return [Submitted(r, f"{array}_{i}", folder / f"{array}_{i}.out") for i, r in enumerate(plan.todo)]


RECORD = "sweep.json"


def write_record(root: Path, request: dict, submitted: List[Submitted]) -> None:
    """``ROOT/sweep.json``: the sweep's request and, per run, its latest job (``fedma sweep status``,
    ``resubmit`` and ``tables`` read it)."""
    import json
    import os
    import time
    path = root / RECORD
    doc = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    doc["request"] = request
    for s in submitted:
        doc["runs"][s.run.name] = {"out": str(s.run.out), "job_id": s.job_id, "log": str(s.log),
                                   "submitted": time.strftime("%Y-%m-%d %H:%M:%S")}
    tmp = path.with_name(f".{RECORD}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def read_record(root) -> dict:
    import json
    from harness.core.errors import DataError
    path = Path(root) / RECORD
    if not path.is_file():
        raise DataError(f"{root}: no {RECORD} (not the --out of a submitted `fedma sweep`)")
    return json.loads(path.read_text())


def write_scripts(plan: Plan, profile, name: str = "fedma") -> List[Path]:
    """One plain sbatch script per unfinished run, written as ``RUN/job.sbatch`` (nothing submitted)."""
    from launchers.sbatch import write_sbatch
    return [write_sbatch(run.out / "job.sbatch", profile, plan.config, run.overrides, str(run.out),
                         name=f"{name}-{run.name}") for run in plan.todo]
