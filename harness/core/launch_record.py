"""``OUT/launch.jsonl``: one line per start of a run under Slurm (job id, array job and task, restart
count, world size, the checkpoint it resumes from), written by rank 0 whichever way the job was submitted
(submitit or the plain sbatch template), so a requeued run's history is in its own directory."""
from __future__ import annotations

import json
import os
import time

from harness.core.rundir import RunDir


def record_start(out) -> None:
    if "SLURM_JOB_ID" not in os.environ or int(os.environ.get("RANK", "0")) != 0:
        return
    run = RunDir(out)
    run.root.mkdir(parents=True, exist_ok=True)
    last = run.latest_checkpoint()
    event = {"time": time.time(), "job_id": os.environ.get("SLURM_JOB_ID"),
             "array_job": os.environ.get("SLURM_ARRAY_JOB_ID"), "array_task": os.environ.get("SLURM_ARRAY_TASK_ID"),
             "restart": int(os.environ.get("SLURM_RESTART_COUNT", "0")),
             "world_size": int(os.environ.get("WORLD_SIZE", "1")), "resume_from": last.name if last else None}
    with open(run.launch, "a") as f:
        f.write(json.dumps(event) + "\n")
