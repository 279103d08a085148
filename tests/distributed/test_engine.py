"""The round engine in real torchrun worlds of CPU processes (gloo, DeepSpeed's CPU accelerator)."""
import json

import pytest
import torch

from harness.core.records import read_records
from harness.core.registry import method_names
from tests.distributed.conftest import projector, torchrun

pytestmark = pytest.mark.dist
METHODS = method_names()


@pytest.fixture(scope="module")
def runs(world5, tmp_path_factory):
    """Every registered method, 3 rounds each, in worlds of 1, 2 and 5 processes."""
    out = {}
    for nproc in (1, 2, 5):
        root = tmp_path_factory.mktemp(f"np{nproc}")
        res = torchrun(nproc, "tests/distributed/run_methods.py", str(world5), str(root), ",".join(METHODS))
        assert res.returncode == 0, res.stderr[-3000:]
        out[nproc] = root
    return out


def finals(run_dir, method):
    names = [f"client_{k:02d}" for k in range(5)] if method == "local" else ["projector"]
    return {n: projector(run_dir / method, n) for n in names}


@pytest.mark.parametrize("method", METHODS)
def test_one_and_many_processes_agree(runs, method):
    """Bit for bit: each client trains on one rank in all three layouts, and the server fuses the
    uploads in client-id order whatever order the groups report in (with 2 ranks: 0, 2, 4, 1, 3)."""
    one = finals(runs[1], method)
    for nproc in (2, 5):
        many = finals(runs[nproc], method)
        for name, state in one.items():
            for k, v in state.items():
                assert torch.equal(v, many[name][k]), (method, nproc, name, k, float((v - many[name][k]).abs().max()))


@pytest.mark.parametrize("method", METHODS)
def test_training_moves_the_projector_and_records_every_round(runs, method):
    recs = read_records(runs[1] / method / "records.jsonl")
    heldout = [r for r in recs if r["benchmark"] == "heldout"]
    assert sorted({r["round"] for r in heldout}) == [1, 2, 3]
    train = [r for r in recs if r["benchmark"] == "train" and r["metric"] == "loss"]
    assert len(train) == 15 and all(r["n"] == 14 for r in train)   # 16 minus the two planted bad records
    ckpt = runs[1] / method / "checkpoints" / "round_003" / "state.json"
    state = json.loads(ckpt.read_text())
    assert state["skipped"]["0"] == {"corrupt_image": 1, "empty_caption": 1}


def test_methods_really_differ(runs):
    a, b, c = (finals(runs[1], m)["projector"] for m in ("fedavg", "moon", "fedcmp"))
    assert not torch.equal(a["linear_1.weight"], b["linear_1.weight"])
    assert not torch.equal(a["linear_1.weight"], c["linear_1.weight"])


def test_fedcmp_records_its_server_diagnostics(runs):
    """omega per client each round (summing to 1); from round 2 on, per projector block, beta
    follows the SPEC's rule from the recorded basis shift: clip(0.5 + 2 delta, 0.5, 0.9), and the number
    of groups OPM aligned is a whole number between 1 and the block's 64 components (tiny: d_out 64)."""
    recs = [r for r in read_records(runs[1] / "fedcmp" / "records.jsonl") if r["benchmark"] == "server"]
    for t in (1, 2, 3):
        omega = {r["client"]: r["value"] for r in recs if r["round"] == t and r["metric"] == "omega"}
        assert sorted(omega) == [0, 1, 2, 3, 4] and sum(omega.values()) == pytest.approx(1.0, abs=1e-9)
    momentum = {(r["round"], r["metric"]): r["value"] for r in recs if r["metric"] != "omega"}
    blocks = ("linear_1.weight+bias", "linear_2.weight+bias")
    assert {m for _, m in momentum} == {f"{q}/{b}" for q in ("beta", "delta", "groups", "change") for b in blocks}
    assert all(v == int(v) and 1 <= v <= 64 for (_, m), v in momentum.items() if m.startswith("groups/"))
    assert {t for t, _ in momentum} == {2, 3}
    for (t, metric), delta in momentum.items():
        if metric.startswith("delta/"):
            beta = momentum[(t, metric.replace("delta/", "beta/"))]
            assert beta == pytest.approx(min(max(0.5 + 2.0 * delta, 0.5), 0.9), abs=1e-12)
    fedavg = read_records(runs[1] / "fedavg" / "records.jsonl")
    assert not [r for r in fedavg if r["benchmark"] == "server"]
