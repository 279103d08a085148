"""Slurm through submitit: an executor built from a cluster profile and the job that runs a federation.

:class:`FedmaJob` is submitted with one Slurm task per rank (one per GPU). Each task exports the
torch.distributed environment from Slurm's (``submitit.helpers.TorchDistributedEnvironment``: rank =
global task id, rendezvous ``env://`` on the first node of the allocation, a port derived from the job
id so concurrent jobs never share a store) and runs ``fedma run ... --resume`` in-process, so the
tasks form one world, split by the round engine into client groups. ``--resume`` on a fresh directory
starts at round 1; on a requeued job it continues from the last complete round.

Requeue: before the time limit (``--signal=USR2@signal_delay_s``) or on preemption, submitit calls
:meth:`FedmaJob.checkpoint` on rank 0, which hands back the same job: it was already checkpointed by
the engine after the last complete round, so nothing has to be saved here. submitit requeues it
(``scontrol requeue``), and the new start resumes. Every start of the job appends a line to
``OUT/launch.jsonl`` (job id, restart count, the round it resumes after; :mod:`harness.core.launch_record`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional

import submitit

from harness.core.rundir import RunDir
from launchers.profile import Profile


class FedmaJob(submitit.helpers.Checkpointable):
    """``fedma run CONFIG OVERRIDES --out OUT --resume`` as one rank of a Slurm job's world.

    ``env`` is set in every task before the run (e.g. ``OMP_NUM_THREADS``, fault injection in tests).
    """

    def __init__(self, config: str, overrides: List[str], out: str, env: Optional[Dict[str, str]] = None):
        self.config = config
        self.overrides = list(overrides)
        self.out = str(out)
        self.env = dict(env or {})

    def __call__(self) -> str:
        os.environ.update(self.env)
        dist_env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        from harness.cli import main
        rc = main(["run", self.config, *self.overrides, "--out", self.out, "--resume"])
        if rc != 0:
            raise RuntimeError(f"fedma run exited with code {rc} (rank {dist_env.rank}); see this task's log")
        return str(RunDir(self.out).final)

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        """Requeue this very job: the round engine's last checkpoint is the state to resume from."""
        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def executor_parameters(profile: Profile, name: str = "fedma") -> dict:
    """submitit parameters for ``profile`` (Slurm-only ones prefixed ``slurm_``, ignored by a local executor)."""
    params = {"name": name, "nodes": profile.nodes, "tasks_per_node": profile.tasks_per_node,
              "cpus_per_task": profile.cpus_per_task, "mem_gb": profile.mem_gb, "timeout_min": profile.time_min,
              "slurm_signal_delay_s": profile.signal_delay_s, "slurm_array_parallelism": profile.array_parallelism,
              "slurm_additional_parameters": {"requeue": True}}
    if profile.gpus_per_node:
        params["gpus_per_node"] = profile.gpus_per_node
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(profile, key):
            params[f"slurm_{key}"] = getattr(profile, key)
    if profile.setup:
        params["slurm_setup"] = list(profile.setup)
    return params


def make_executor(profile: Profile, folder, name: str = "fedma", cluster: Optional[str] = None):
    """A submitit executor for ``profile``; ``cluster=None`` auto-detects Slurm, ``"local"`` runs here."""
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster,
                                     slurm_max_num_timeout=profile.max_num_timeout)
    executor.update_parameters(**executor_parameters(profile, name))
    return executor


def submit_run(profile: Profile, config: str, overrides: List[str], out, folder=None,
               env: Optional[Dict[str, str]] = None, cluster: Optional[str] = None, name: str = "fedma"):
    """Submit one federation; returns the submitit job (``job.results()`` waits for every task)."""
    out = Path(out)
    executor = make_executor(profile, folder or out / "slurm", name=name, cluster=cluster)
    return executor.submit(FedmaJob(config, overrides, str(out), env))
