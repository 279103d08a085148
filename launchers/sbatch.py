"""Plain ``sbatch`` scripts (srun + torchrun rendezvous) from a cluster profile, for users without submitit.

The script asks for one Slurm task per node holding all of that node's CPUs and GPUs; the task starts
``torchrun --nproc_per_node=tasks_per_node`` and the agents meet at a c10d rendezvous on the first node.
A sweep is one script for a job array: array task i runs the i-th run (a ``case`` on
``SLURM_ARRAY_TASK_ID``), at most ``array_parallelism`` at once, each task logging to ``%A_%a.out``.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from harness.core.errors import HarnessError
from launchers.profile import Profile

TEMPLATE = files("launchers") / "templates" / "torchrun.sbatch"   # package data (slurm/templates links here)


def sbatch_lines(profile: Profile, name: str, output: str) -> List[str]:
    lines = [f"--job-name={name}", f"--nodes={profile.nodes}", "--ntasks-per-node=1",
             f"--cpus-per-task={profile.cpus_per_task * profile.tasks_per_node}"]
    if profile.gpus_per_node:
        lines.append(f"--gpus-per-node={profile.gpus_per_node}")
    lines += [f"--mem={profile.mem_gb}G", f"--time={profile.time_min}"]
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(profile, key):
            lines.append(f"--{key}={getattr(profile, key)}")
    lines += [f"--signal=B:USR2@{profile.signal_delay_s}", "--requeue", "--open-mode=append",
              f"--output={output}"]
    return ["#SBATCH " + line for line in lines]


def render_sbatch(profile: Profile, config: str, overrides: List[str], out: str, name: str = "fedma",
                  python: Optional[str] = None, workdir: Optional[str] = None) -> str:
    """The sbatch script running ``fedma run CONFIG OVERRIDES --out OUT --resume`` on ``profile``."""
    run_args = " ".join(shlex.quote(a) for a in [config, *overrides, "--out", str(out)])
    return _render(profile, sbatch_lines(profile, name, f"{out}/slurm-%j.out"), "", run_args, python, workdir)


def render_array(profile: Profile, config: str, runs: Sequence[Tuple[List[str], str]], log_dir, name: str = "fedma-sweep",
                 python: Optional[str] = None, workdir: Optional[str] = None) -> str:
    """One job array for ``runs`` ((overrides, out) per run): task i runs run i."""
    cases = "".join(f"    {i}) RUN_ARGS=({' '.join(shlex.quote(a) for a in [config, *ov, '--out', str(out)])}) ;;\n"
                    for i, (ov, out) in enumerate(runs))
    select = (f'case "$SLURM_ARRAY_TASK_ID" in\n{cases}'
              '    *) echo "fedma: no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;\nesac\n')
    lines = sbatch_lines(profile, name, f"{log_dir}/%A_%a.out")
    lines.append(f"#SBATCH --array=0-{len(runs) - 1}%{profile.array_parallelism}")
    return _render(profile, lines, select, '"${RUN_ARGS[@]}"', python, workdir, f", an array of {len(runs)} runs")


def _render(profile: Profile, lines: List[str], array_lines: str, run_args: str, python, workdir, what: str = "") -> str:
    setup = "".join(line + "\n" for line in profile.setup)
    return TEMPLATE.read_text().format(
        description=f"{profile.nodes} node(s) x {profile.tasks_per_node} rank(s) = world of {profile.world_size}{what}",
        profile=profile.name, sbatch_lines="\n".join(lines), setup_lines=setup, array_lines=array_lines,
        workdir=shlex.quote(str(workdir or Path.cwd())), omp_threads=profile.cpus_per_task,
        signal_delay_s=profile.signal_delay_s, python=shlex.quote(python or sys.executable),
        nproc_per_node=profile.tasks_per_node, run_args=run_args)


def submit_script(script: Path) -> str:
    """``sbatch --parsable SCRIPT``; the job id, or one error line with sbatch's reason."""
    try:
        res = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise HarnessError("sbatch is not installed here (run on a Slurm login node)") from None
    if res.returncode != 0:
        raise HarnessError(f"sbatch refused {script}: {first_error(res.stderr)}")
    return res.stdout.strip().split(";")[0]


def first_error(text: str) -> str:
    """The line of a command's output that says what went wrong (``fatal:``, else ``error:``), else the first."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for word in ("fatal:", "error:"):
        hit = next((line for line in lines if word in line.lower()), None)
        if hit:
            return hit
    return lines[0] if lines else "no message"


def write_sbatch(path, *args, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_sbatch(*args, **kwargs))
    return path
