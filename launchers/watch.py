"""Slurm's own view of a sweep's jobs, and each run's progress from its directory.

States come from ``squeue`` while a job is queued or running, then from ``sacct`` when the cluster keeps
accounting, else from ``scontrol show job`` (which remembers a finished job for MinJobAge seconds); no
command's warnings reach the console. A run is ``done`` when its job completed and its ``final/`` exists,
``failed`` when its job ended otherwise (the log's last error line says why), ``requeued`` when it waits
to start again after a preemption or time limit, else ``pending`` or ``running``.
"""
from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

from launchers.preflight import slurm

from harness.core.rundir import RunDir

ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
         "SPECIAL_EXIT", "UNKNOWN"}


def accounting() -> bool:
    """Whether the cluster keeps job accounting (sacct answers only then)."""
    for line in slurm("scontrol", "show", "config").splitlines():
        if line.startswith("AccountingStorageType"):
            return "none" not in line.split("=", 1)[1]
    return False


def _scontrol_job(job_id: str) -> Dict[str, str]:
    res = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        return {}
    return dict(w.split("=", 1) for w in res.stdout.split() if "=" in w)


def job_states(ids: Iterable[str], use_sacct: Optional[bool] = None) -> Dict[str, str]:
    """{job id: Slurm state}; ``UNKNOWN`` for a job Slurm no longer knows."""
    ids = list(ids)
    queued = dict(line.split("|", 1) for line in slurm("squeue", "-h", "-r", "-o", "%i|%T").splitlines() if "|" in line)
    states = {i: queued[i] for i in ids if i in queued}
    gone = [i for i in ids if i not in states]
    if gone and (accounting() if use_sacct is None else use_sacct):
        for line in slurm("sacct", "-n", "-P", "-X", "-j", ",".join(gone), "-o", "JobID,State").splitlines():
            job, _, state = line.partition("|")
            if job in gone:
                states[job] = state.split()[0] if state else "UNKNOWN"
    for i in gone:
        if i not in states:
            states[i] = _scontrol_job(i).get("JobState", "UNKNOWN")
    return states


def restarts(job_id: str) -> int:
    return int(_scontrol_job(job_id).get("Restarts", "0") or 0)


def wait_jobs(ids: List[str], poll: float = 3.0, on_poll: Optional[Callable[[Dict[str, str]], None]] = None
              ) -> Dict[str, str]:
    """Poll until every job has ended; returns the final states."""
    while True:
        states = job_states(ids)
        if on_poll:
            on_poll(states)
        if all(s in ENDED for s in states.values()):
            return states
        time.sleep(poll)


@dataclass
class RunStatus:
    name: str
    out: Path
    job_id: Optional[str]
    state: str                 # pending | running | requeued | done | failed | not submitted
    round: int                 # last complete round (checkpointed), 0 before the first
    last_record: Optional[float]
    log: Optional[Path]
    error: str = ""


def run_status(name: str, out: Path, job_id: Optional[str], slurm_state: Optional[str], log: Optional[Path]) -> RunStatus:
    from harness.engine.checkpoint import latest_checkpoint
    from launchers.sweep import is_finished
    last = latest_checkpoint(out)
    records = RunDir(out).records
    status = RunStatus(name, out, job_id, "", int(last.name.split("_")[1]) if last else 0,
                       records.stat().st_mtime if records.is_file() else None, log)
    if is_finished(out) and slurm_state in (None, "COMPLETED", "UNKNOWN"):
        status.state = "done"
    elif slurm_state is None:
        status.state = "not submitted"
    elif slurm_state in ENDED:
        status.state, status.error = "failed", f"{slurm_state}: {last_error(log)}"
    elif slurm_state in ("PENDING", "REQUEUED", "REQUEUE_HOLD") and job_id and restarts(job_id):
        status.state = "requeued"
    else:
        status.state = "running" if slurm_state in ("RUNNING", "COMPLETING", "CONFIGURING") else "pending"
    return status


def last_error(log: Optional[Path]) -> str:
    """The last line of a job's log that reports an error (our one-line ``error:``, an exception)."""
    if log is None or not Path(log).is_file():
        return f"no log at {log}" if log else "no log"
    lines = [line.strip() for line in Path(log).read_text(errors="replace").splitlines() if line.strip()]
    tests = (lambda line: line.startswith("error:"),                         # fedma's own one-line errors
             lambda line: re.match(r"^[\w.]+(Error|Exception)\b", line),      # a traceback's last line
             lambda line: "error:" in line.lower() or "Killed" in line or "CANCELLED" in line)
    for test in tests:
        hit = next((line for line in reversed(lines) if test(line)), None)
        if hit:
            return hit[-300:]
    return lines[-1][-300:] if lines else "empty log"


def status_table(rows: List[RunStatus], title: str):
    from rich.table import Table
    colors = {"done": "green", "failed": "red", "running": "cyan", "requeued": "yellow", "pending": "white"}
    table = Table("run", "job", "state", "round", "last record", "log / error", title=title)
    now = time.time()
    for r in rows:
        age = "–" if r.last_record is None else f"{now - r.last_record:.0f} s ago"
        detail = "see below" if r.state == "failed" else (str(r.log) if r.log else "")
        table.add_row(r.name, r.job_id or "–", f"[{colors.get(r.state, 'white')}]{r.state}[/]", str(r.round), age, detail)
    return table
