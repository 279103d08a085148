"""Sweeps as a user runs them, on the real local Slurm: one sbatch job array submitted and waited for from
Slurm's own state, the final table (a failed run with its log and last error line), status, resubmit,
tables over the sweep root, and one-line errors for what Slurm would refuse, before anything is submitted."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.core.records import read_records
from tests.slurm.conftest import fedma

pytestmark = pytest.mark.slurm
NOISE = ("accounting storage is disabled", "Bypassing sacct", "Traceback")


def sweep(root, data, *extra, env=None, timeout=600):
    args = ["sweep", "tiny", f"data.root={data}", "rounds=2", "--out", root, "--profile", "local",
            "--set", "tasks_per_node=1", *extra]
    if env is None:
        return fedma(*args, timeout=timeout)
    from tests.distributed.conftest import run_session
    return run_session([sys.executable, "-m", "harness.cli", *map(str, args)], env=env, timeout=timeout)


def status_rows(root):
    res = fedma("sweep", "status", root, "--json", timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def states(root):
    return {r["name"]: (r["state"], r["round"]) for r in status_rows(root)}


def test_sbatch_sweep_is_one_array_that_wait_sees_finish(slurm_cluster, slurm_data, tmp_path):
    root = tmp_path / "sb"
    res = sweep(root, slurm_data, "--methods", "fedavg,fedcmp", "--sbatch", "--wait")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "2 to submit" in out and "submitted 2 job(s)" in out and not any(n in out for n in NOISE), out[-3000:]
    runs = [root / "ii" / m / "seed0" for m in ("fedavg", "fedcmp")]
    for run in runs:
        assert (run / "final" / "projector.safetensors").is_file()
        assert sorted({r["round"] for r in read_records(run / "records.jsonl") if r["benchmark"] == "heldout"}) == [1, 2]
    starts = [json.loads(line) for run in runs for line in (run / "launch.jsonl").read_text().splitlines()]
    assert len({s["array_job"] for s in starts}) == 1 and sorted(s["array_task"] for s in starts) == ["0", "1"]
    assert states(root) == {"fedavg-ii-s0": ("done", 2), "fedcmp-ii-s0": ("done", 2)}
    for line in subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split():
        assert not line.startswith(starts[0]["array_job"]), "wait returned while a task was still queued"
    tables = fedma("tables", root, "--format", "csv", "--out", tmp_path / "t", timeout=300)
    assert tables.returncode == 0, tables.stderr[-2000:]
    table = (tmp_path / "t" / "table1_ii.csv").read_text()
    assert "FedAvg" in table and "Fed-CMP" in table


def test_a_failed_run_is_reported_then_resubmitted_and_resumed(slurm_cluster, slurm_data, tmp_path):
    """The 'late' variant reads a data root that does not exist yet: its job fails, --wait's table names
    its log and its last error line, the exit code is 1; status says the same; once the data exists,
    resubmit submits only that run, and it finishes."""
    root = tmp_path / "f"
    late = tmp_path / "late"
    res = sweep(root, slurm_data, "--methods", "fedavg", "--variant", "now", "--variant", "late",
                f"data.root={late}", "--sbatch", "--wait")
    out = res.stdout + res.stderr
    assert res.returncode == 1, out[-3000:]
    assert "1 of 2 run(s) not done" in out and not any(n in out for n in NOISE), out
    failed = next(line for line in out.splitlines() if line.startswith("failed fedavg+late-ii-s0"))
    assert "error: data.root=" in failed and "no manifest.json" in failed, failed
    rows = {r["name"]: r for r in status_rows(root)}
    assert (rows["fedavg+now-ii-s0"]["state"], rows["fedavg+late-ii-s0"]["state"]) == ("done", "failed"), rows
    assert "no manifest.json" in rows["fedavg+late-ii-s0"]["error"] and Path(rows["fedavg+late-ii-s0"]["log"]).is_file()
    os.symlink(slurm_data, late)
    again = fedma("sweep", "resubmit", root, "--wait", timeout=600)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "1 to submit, 1 finished" in again.stdout
    assert (root / "ii" / "fedavg+late" / "seed0" / "final" / "projector.safetensors").is_file()
    assert states(root) == {"fedavg+now-ii-s0": ("done", 2), "fedavg+late-ii-s0": ("done", 2)}


@pytest.mark.parametrize("extra, words", [
    (["--set", "tasks_per_node=1", "partition=gpu"], ["partition='gpu' does not exist on this cluster", "debug", "high"]),
    (["--profile", "paper"], ["asks for 8 GPU(s) per node", "no GPUs", "gpus_per_node=0"]),
])
def test_what_slurm_would_refuse_is_one_line_before_submitting(slurm_cluster, slurm_data, tmp_path, extra, words):
    res = fedma("sweep", "tiny", f"data.root={slurm_data}", "--out", tmp_path / "x", "--profile", "local", *extra,
                "--sbatch", timeout=120)
    err = res.stderr.strip()
    assert res.returncode == 2 and len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not (tmp_path / "x" / "sweep.json").exists()


def test_sbatch_refusing_the_script_is_one_line(slurm_cluster, slurm_data, tmp_path):
    res = sweep(tmp_path / "m", slurm_data, "--set", "tasks_per_node=1", "mem_gb=100000", "--sbatch")
    err = res.stderr.strip()
    assert res.returncode == 2 and len(err.splitlines()) == 1 and "sbatch refused" in err and "error" in err, err


def test_no_slurm_configuration_is_one_line_naming_the_fix(slurm_cluster, slurm_data, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
    res = sweep(tmp_path / "n", slurm_data, "--sbatch", env=env, timeout=120)
    err = res.stderr.strip()
    assert res.returncode == 2 and len(err.splitlines()) == 1, err
    assert "Slurm is not reachable" in err and "local_cluster.sh env" in err, err
