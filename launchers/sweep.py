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
    final = Path(run_dir) / "final"
    return final.is_dir() and any(final.glob("*.safetensors"))


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
    from harness.config import load_config
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


def write_scripts(plan: Plan, profile, name: str = "fedma") -> List[Path]:
    """One plain sbatch script per unfinished run, written as ``RUN/job.sbatch`` (nothing submitted)."""
    from launchers.sbatch import write_sbatch
    return [write_sbatch(run.out / "job.sbatch", profile, plan.config, run.overrides, str(run.out),
                         name=f"{name}-{run.name}") for run in plan.todo]
