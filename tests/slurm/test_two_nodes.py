"""A sweep over two nodes of the local cluster (slurm/local_cluster.sh: node1, node2), as a user on a
real cluster runs one: ``fedma sweep ... --sbatch --wait --set nodes=2``. Its run spans both nodes, one
rank each, and ends with the projector of torchrun x2 on one machine, bit for bit."""
import json
import os
import sys

import pytest
import torch

from tests.distributed.conftest import fedma_run, projector, run_session

pytestmark = pytest.mark.slurm
RUN = ["rounds=2", "method=fedcmp", "scenario=ii", "seed=0"]   # what the sweep gives its one run


def agent_ranks(log: str):
    """(group_rank, global_ranks) of every torchrun agent that logged its rendezvous (LOGLEVEL=INFO); the
    agents' lines interleave, and each names its agent's pid (the third field)."""
    by_pid = {}
    for line in log.splitlines():
        for key in ("group_rank=", "global_ranks="):
            if key in line and len(line.split()) > 2:
                by_pid.setdefault(line.split()[2], {})[key] = line.split(key, 1)[1].strip()
    return sorted((int(v["group_rank="]), v.get("global_ranks=")) for v in by_pid.values())


def test_sbatch_sweep_over_two_nodes_equals_torchrun_x2(slurm_cluster, slurm_data, tmp_path):
    root = tmp_path / "sweep"
    env = {**os.environ, "LOGLEVEL": "INFO"}   # sbatch exports it: the agents log their rendezvous result
    res = run_session([sys.executable, "-m", "harness.cli", "sweep", "tiny", f"data.root={slurm_data}", "rounds=2",
                       "--methods", "fedcmp", "--out", str(root), "--profile", "local",
                       "--set", "tasks_per_node=1", "nodes=2", "--sbatch", "--wait"], env=env, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    run = root / "ii" / "fedcmp" / "seed0"
    (start,) = [json.loads(line) for line in (run / "launch.jsonl").read_text().splitlines()]
    assert start["world_size"] == 2 and start["restart"] == 0
    log = (root / "slurm" / f"{start['array_job']}_{start['array_task']}.out").read_text()
    assert agent_ranks(log) == [(0, "[0]"), (1, "[1]")], log[-3000:]
    # each fake node's slurmd launched one task of step 0 (the srun starting torchrun; slurmd names the raw job id)
    step = f"launch task StepId={start['job_id']}.0 "
    for node in ("node1", "node2"):
        slurmd = (slurm_cluster / "nodes" / node / "slurmd.log").read_text()
        assert step in slurmd, (node, slurmd[-2000:])
    ref = tmp_path / "torchrun"
    one = fedma_run(2, ref, f"data.root={slurm_data}", *RUN)
    assert one.returncode == 0, one.stderr[-2000:]
    two, single = projector(run), projector(ref)
    assert two.keys() == single.keys() and all(torch.equal(two[k], single[k]) for k in two)
