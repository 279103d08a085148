"""Plain ``sbatch`` scripts (srun + torchrun rendezvous) from a cluster profile, for users without submitit.

The script asks for one Slurm task per node holding all of that node's CPUs and GPUs; the task starts
``torchrun --nproc_per_node=tasks_per_node`` and the agents meet at a c10d rendezvous on the first node.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional

from launchers.profile import REPO, Profile

TEMPLATE = REPO / "slurm" / "templates" / "torchrun.sbatch"


def sbatch_lines(profile: Profile, name: str, out: str) -> List[str]:
    lines = [f"--job-name={name}", f"--nodes={profile.nodes}", "--ntasks-per-node=1",
             f"--cpus-per-task={profile.cpus_per_task * profile.tasks_per_node}"]
    if profile.gpus_per_node:
        lines.append(f"--gpus-per-node={profile.gpus_per_node}")
    lines += [f"--mem={profile.mem_gb}G", f"--time={profile.time_min}"]
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(profile, key):
            lines.append(f"--{key}={getattr(profile, key)}")
    lines += [f"--signal=B:USR2@{profile.signal_delay_s}", "--requeue", "--open-mode=append",
              f"--output={out}/slurm-%j.out"]
    return ["#SBATCH " + line for line in lines]


def render_sbatch(profile: Profile, config: str, overrides: List[str], out: str, name: str = "fedma",
                  python: Optional[str] = None, workdir: Optional[str] = None) -> str:
    """The sbatch script running ``fedma run CONFIG OVERRIDES --out OUT --resume`` on ``profile``."""
    run_args = " ".join(shlex.quote(a) for a in [config, *overrides, "--out", str(out)])
    setup = "".join(line + "\n" for line in profile.setup)
    return TEMPLATE.read_text().format(
        description=f"{profile.nodes} node(s) x {profile.tasks_per_node} rank(s) = world of {profile.world_size}",
        profile=profile.name, sbatch_lines="\n".join(sbatch_lines(profile, name, str(out))),
        setup_lines=setup, workdir=shlex.quote(str(workdir or REPO)), omp_threads=profile.cpus_per_task,
        signal_delay_s=profile.signal_delay_s, python=shlex.quote(python or sys.executable),
        nproc_per_node=profile.tasks_per_node, run_args=run_args)


def write_sbatch(path, *args, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_sbatch(*args, **kwargs))
    return path
