"""A 2-round, 2-method federation on a small Fed-MA-mini world (the mini preset, real round engine under
torchrun): it completes and the held-out caption loss falls."""
import pytest

from harness.mini import ensure_models, ensure_world
from harness.records import read_records
from tests.distributed.conftest import torchrun

pytestmark = pytest.mark.dist
METHODS = ("fedavg", "fedcmp")


def test_two_round_mini_run_learns(tmp_path):
    ensure_models()                                   # the cached pretrained mini LLaVA (built once)
    root = ensure_world(tmp_path / "world", per_round=64, heldout=40, rounds=2)
    res = torchrun(1, "tests/distributed/run_methods.py", str(root), str(tmp_path / "runs"), ",".join(METHODS),
                   "model.preset=mini", "client.lr=3e-3", "client.zero_stage=0", "client.batch_size=16",
                   "data.max_caption_tokens=32", "federation.rounds=2", timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    for method in METHODS:
        recs = read_records(tmp_path / "runs" / method / "records.jsonl")
        loss = {r["round"]: r["value"] for r in recs if r["benchmark"] == "heldout"}
        assert sorted(loss) == [1, 2], method
        print(method, loss)
        assert loss[2] < loss[1], (method, loss)
