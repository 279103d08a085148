"""Checks against the cluster's own view before anything is submitted, each failure one line naming what
to change: Slurm reachable (a configuration source), the profile's partition exists, its nodes have the
GPUs (gres) the profile asks for, and enough of them."""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from typing import Dict, List

from harness.core.errors import HarnessError
from launchers.profile import Profile
from launchers.sbatch import first_error

LOCAL_HINT = 'on the local test cluster run `eval "$(bash slurm/local_cluster.sh env)"` (after `start`)'


@dataclass
class Partition:
    name: str
    default: bool
    nodes: int
    gpus_per_node: int        # the smallest gres/gpu count among its nodes (0: none)


def slurm(*cmd: str) -> str:
    """A Slurm command's stdout; HarnessError naming the fix when Slurm is missing or unreachable."""
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise HarnessError(f"{cmd[0]} is not installed here: submit from a Slurm login node, or use "
                           f"--cluster local to run the sweep on this machine") from None
    except subprocess.TimeoutExpired:
        raise HarnessError(f"{cmd[0]} did not answer in 30 s: is slurmctld up? ({LOCAL_HINT})") from None
    if res.returncode != 0:
        conf = os.environ.get("SLURM_CONF")
        hint = (f"SLURM_CONF is not set: {LOCAL_HINT}; on a real cluster, submit from a login node" if not conf else
                f"SLURM_CONF={conf}: is its slurmctld up? (`bash slurm/local_cluster.sh status` for the local one)")
        raise HarnessError(f"Slurm is not reachable ({first_error(res.stderr or res.stdout)}); {hint}")
    return res.stdout


def gpu_count(gres: str) -> int:
    """gres/gpu count of a node from sinfo's %G ("gpu:a100:8(S:0-1),..."; "(null)" is none)."""
    found = re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres)
    return sum(int(n) for n in found)


def partitions() -> Dict[str, Partition]:
    out: Dict[str, Partition] = {}
    for line in slurm("sinfo", "-h", "-N", "-o", "%P|%N|%G").splitlines():
        part, node, gres = (line.split("|") + ["", ""])[:3]
        name = part.rstrip("*")
        p = out.setdefault(name, Partition(name, part.endswith("*"), 0, 10 ** 6))
        p.nodes += 1
        p.gpus_per_node = min(p.gpus_per_node, gpu_count(gres))
    for p in out.values():
        p.gpus_per_node = 0 if p.gpus_per_node == 10 ** 6 else p.gpus_per_node
    return out


def check_cluster(profile: Profile) -> Partition:
    """The partition the profile's jobs go to, after every check; HarnessError (one line) otherwise."""
    parts = partitions()
    names: List[str] = sorted(parts)
    if profile.partition:
        if profile.partition not in parts:
            raise HarnessError(f"profile {profile.name}: partition={profile.partition!r} does not exist on this "
                               f"cluster; valid: {', '.join(names)} (--set partition=NAME, or null for the default)")
        part = parts[profile.partition]
    else:
        part = next((p for p in parts.values() if p.default), None)
        if part is None:
            raise HarnessError(f"profile {profile.name}: no partition set and the cluster has no default; "
                               f"valid: {', '.join(names)} (--set partition=NAME)")
    if profile.gpus_per_node > part.gpus_per_node:
        have = f"{part.gpus_per_node} GPU(s) (gres/gpu)" if part.gpus_per_node else "no GPUs (no gres/gpu)"
        gpu_parts = [n for n, p in parts.items() if p.gpus_per_node >= profile.gpus_per_node]
        fix = (f"--set partition={gpu_parts[0]}" if gpu_parts else
               "--set gpus_per_node=0 on a CPU cluster, or --profile local")
        raise HarnessError(f"profile {profile.name} asks for {profile.gpus_per_node} GPU(s) per node, but the nodes "
                           f"of partition {part.name!r} have {have}; use {fix}")
    if profile.nodes > part.nodes:
        raise HarnessError(f"profile {profile.name} asks for {profile.nodes} node(s), partition {part.name!r} has "
                           f"{part.nodes}; --set nodes={part.nodes} (and tasks_per_node) or another partition")
    return part
