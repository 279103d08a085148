"""Real Slurm (slurm/local_cluster.sh: munge, slurmctld, two fake nodes): submitit jobs, the plain sbatch
template, requeue in the middle of a run, and a sweep as a job array. Every run is the `tiny` model,
5 clients x 2 rounds, 2 ranks."""
import json
import subprocess
import time
from pathlib import Path

import pytest
import torch

from harness.core.records import read_records
from launchers.profile import resolve_profile
from launchers.sbatch import write_sbatch
from launchers.slurm import submit_run
from tests.distributed.conftest import projector
from tests.slurm.conftest import fedma, wait_job, wait_sbatch

pytestmark = pytest.mark.slurm

JOB_TIMEOUT = 240


def run_args(data, method="fedavg"):
    return [f"data.root={data}", f"method={method}", "rounds=2"]


def heldout_rounds(run_dir):
    return sorted(r["round"] for r in read_records(Path(run_dir) / "records.jsonl") if r["benchmark"] == "heldout")


def starts(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "launch.jsonl").read_text().splitlines()]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference_run(slurm_cluster, slurm_data, tmp_path_factory):
    """One uninterrupted 2-task (1 node x 2 tasks) federation through submitit."""
    out = tmp_path_factory.mktemp("runs") / "ref"
    job = submit_run(resolve_profile(None, "local"), "tiny", run_args(slurm_data), out)
    results = wait_job(job, JOB_TIMEOUT)
    return out, job, results


def test_submitit_two_task_federation_completes_and_writes_records(reference_run):
    out, job, results = reference_run
    assert results == [str(out / "final")] * 2          # both tasks (ranks) returned
    assert (out / "final" / "projector.safetensors").exists()
    assert heldout_rounds(out) == [1, 2]
    assert [(s["restart"], s["world_size"], s["resume_from"]) for s in starts(out)] == [(0, 2, None)]


def test_sbatch_template_two_nodes_completes_with_the_same_projector(slurm_cluster, slurm_data, reference_run,
                                                                     tmp_path):
    """srun + torchrun c10d rendezvous across the two fake nodes (2 x 1 rank): the same world size as
    the submitit run, so the same client groups and, on CPU, the same projector bit for bit."""
    out = tmp_path / "sb"
    profile = resolve_profile(None, "local", {"nodes": 2, "tasks_per_node": 1})
    script = write_sbatch(out / "job.sbatch", profile, "tiny", run_args(slurm_data), str(out))
    job_id = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                            check=True).stdout.strip().split(";")[0]
    state = wait_sbatch(job_id, JOB_TIMEOUT)
    log = (out / f"slurm-{job_id}.out").read_text() if (out / f"slurm-{job_id}.out").exists() else "(no log)"
    assert state == "COMPLETED", log[-3000:]
    assert heldout_rounds(out) == [1, 2]
    assert same(projector(out), projector(reference_run[0]))


def test_job_requeued_in_the_middle_resumes_to_the_same_projector(slurm_cluster, slurm_data, reference_run,
                                                                  tmp_path):
    """Preempt (SIGTERM + USR2, as Slurm does) once round 1 is checkpointed: submitit calls
    FedmaJob.checkpoint and requeues; the second start resumes after round 1. Round 2 is slowed by
    1 s per step (FEDMA_INJECT=slow, which changes no number) so the signal always lands inside it."""
    out = tmp_path / "rq"
    job = submit_run(resolve_profile(None, "local"), "tiny", run_args(slurm_data), out,
                     env={"FEDMA_INJECT": "slow:round=2"})
    deadline = time.time() + JOB_TIMEOUT
    while not (out / "checkpoints" / "round_001" / "state.json").exists():
        assert time.time() < deadline and not job.done(), "round 1 was never checkpointed"
        time.sleep(0.2)
    job._interrupt()     # submitit's own preemption drill: scancel --signal SIGTERM, then USR2
    wait_job(job, JOB_TIMEOUT)
    assert [(s["restart"], s["resume_from"]) for s in starts(out)] == [(0, None), (1, "round_001")]
    assert heldout_rounds(out) == [1, 2]
    assert same(projector(out), projector(reference_run[0]))


def test_sbatch_usr2_requeues_itself_and_resumes_to_the_same_projector(slurm_cluster, slurm_data, reference_run,
                                                                       tmp_path):
    """The template's own preemption path: Slurm sends USR2 to the batch shell before the time limit
    (here sent by hand with ``scancel --signal=USR2 --batch`` once round 1 is checkpointed); the trap
    requeues the job, and its second start resumes after round 1 to the same projector."""
    out = tmp_path / "usr2"
    profile = resolve_profile(None, "local", {"nodes": 2, "tasks_per_node": 1,
                                              "setup": ["export FEDMA_INJECT=slow:round=2"]})
    script = write_sbatch(out / "job.sbatch", profile, "tiny", run_args(slurm_data), str(out))
    job_id = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                            check=True).stdout.strip().split(";")[0]
    deadline = time.time() + JOB_TIMEOUT
    while not (out / "checkpoints" / "round_001" / "state.json").exists():
        assert time.time() < deadline, "round 1 was never checkpointed"
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", "--batch", job_id], check=True)
    state = wait_sbatch(job_id, JOB_TIMEOUT * 2)
    log = (out / f"slurm-{job_id}.out").read_text() if (out / f"slurm-{job_id}.out").exists() else "(no log)"
    assert state == "COMPLETED", log[-3000:]
    restarts = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert "Restarts=1" in restarts, restarts
    assert heldout_rounds(out) == [1, 2]
    assert same(projector(out), projector(reference_run[0]))


def test_sweep_of_two_methods_and_two_seeds(slurm_cluster, slurm_data, tmp_path):
    root = tmp_path / "sweep"
    args = ["sweep", "tiny", f"data.root={slurm_data}", "rounds=2", "--methods", "fedavg,fedcmp", "--seeds", "0,1",
            "--out", root, "--profile", "local", "--set", "tasks_per_node=1", "array_parallelism=4", "--cluster", "slurm", "--wait"]
    res = fedma(*args, timeout=JOB_TIMEOUT * 2)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "4 to submit" in res.stdout
    runs = sorted(root.glob("ii/*/seed*"))
    assert [str(r.relative_to(root)) for r in runs] == ["ii/fedavg/seed0", "ii/fedavg/seed1",
                                                          "ii/fedcmp/seed0", "ii/fedcmp/seed1"]
    for run in runs:
        assert (run / "final" / "projector.safetensors").exists() and heldout_rounds(run) == [1, 2]
        recs = read_records(run / "records.jsonl")
        assert {(r["method"], r["seed"]) for r in recs} == {(run.parent.name, int(run.name[4:]))}
    assert len({s["array_job"] for run in runs for s in starts(run)}) == 1   # one job array
    again = fedma(*args, timeout=120)                                      # finished runs are skipped
    assert again.returncode == 0 and "0 to submit, 4 finished" in again.stdout, again.stdout + again.stderr
    tables = fedma("tables", *runs, "--format", "csv,md", "--out", root / "tables", timeout=300)
    assert tables.returncode == 0, (tables.stdout + tables.stderr)[-3000:]
    table = (root / "tables" / "table1_ii.csv").read_text()
    assert "FedAvg" in table and "Fed-CMP" in table and "n/a" in table   # no benchmark scores in this sweep
