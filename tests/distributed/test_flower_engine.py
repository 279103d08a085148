"""Flower strategies in real torchrun worlds: a robust rule to the end, and kill -9 then --resume with a
stateful one (FedAdam's m_t and v_t live in the pickled strategy inside our checkpoint; that losing them
changes the result is shown in tests/unit/test_flower.py)."""
import pytest
import torch

from harness.core.records import read_records
from tests.distributed.conftest import fedma_run, kill_then_resume, projector

pytestmark = pytest.mark.dist


def test_fedmedian_runs_a_mini_federation_to_the_end(world5, tmp_path):
    res = fedma_run(1, tmp_path / "m", f"data.root={world5}", "method=flwr:FedMedian")
    assert res.returncode == 0, res.stderr[-2000:]
    recs = read_records(tmp_path / "m" / "records.jsonl")
    assert {r["method"] for r in recs} == {"flwr:FedMedian"}
    assert sorted(r["round"] for r in recs if r["benchmark"] == "heldout") == [1, 2, 3]
    assert all(torch.isfinite(v).all() for v in projector(tmp_path / "m").values())


def test_sigkill_then_resume_is_bit_identical_with_a_flower_strategy(world5, tmp_path):
    args = (f"data.root={world5}", "method=flwr:FedAdam", "aggregator.flwr.eta=0.01")
    whole, cut = kill_then_resume(1, tmp_path, args, "kill:round=2:phase=aggregate")
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
