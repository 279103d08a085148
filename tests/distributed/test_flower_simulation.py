"""Our Fed-CMP as a Flower strategy in a real Flower simulation (flwr.simulation.run_simulation: Ray actors as
5 SuperNodes, a small torch model, 3 rounds; harness/flower/example.py, the example docs/flower.md runs):
the simulation ends with the arrays our aggregator computes, in this process, from the same uploads."""
import json
import os
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from harness import ClientUpdate, build_aggregator
from tests.distributed.conftest import REPO, run_session

pytestmark = pytest.mark.dist


def traced_uploads(out, round_, clients):
    ups = []
    for k in range(clients):
        path = str(out / f"round_{round_}" / f"client_{k}.safetensors")
        with safe_open(path, "pt") as f:
            meta = f.metadata()
        ups.append(ClientUpdate(k, load_file(path), int(meta["n"]), float(meta["align_error"])))
    return ups


def test_fedcmp_strategy_in_a_flower_simulation_ends_with_our_aggregate(tmp_path):
    out = tmp_path / "sim"
    res = run_session([sys.executable, "-m", "harness.flower.example", "--out", str(out), "--method", "fedcmp",
                       "--rounds", "3", "--clients", "5"], env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
                      timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((out / "run.json").read_text())["method"] == "fedcmp"
    ours, fedavg = build_aggregator("fedcmp"), build_aggregator("fedavg")
    state = load_file(str(out / "initial.safetensors"))
    for t in (1, 2, 3):
        ups = traced_uploads(out, t, 5)
        assert sorted(u.num_samples for u in ups) == [32, 64, 96, 128, 160]
        averaged = fedavg.aggregate(state, ups)
        state = ours.aggregate(state, ups)
    final = load_file(str(out / "final.safetensors"))
    eps = torch.finfo(torch.float32).eps
    for k in state:     # measured on this machine: identical bit for bit
        assert float((final[k] - state[k]).abs().max()) <= eps * float(state[k].abs().max()), k
    # and it is Fed-CMP, not Flower's FedAvg: round 3 (OPM's momentum on) differs from the plain average
    assert max(float((final[k] - averaged[k]).abs().max()) for k in state) > 1e-3
