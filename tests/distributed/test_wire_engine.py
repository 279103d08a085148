"""Secure aggregation and compressed uploads in real torchrun worlds: FedAvg on masked sums ends where
plain FedAvg does with a client dropped mid-round, and topk's client-side residuals survive kill -9."""
import math

import pytest
import torch
from safetensors.torch import load_file

from harness.core.records import read_records
from tests.distributed.conftest import fedma_run, kill_then_resume, projector

pytestmark = pytest.mark.dist

DROP = {"FEDMA_INJECT": "raise:client=1:round=2"}


def comm(run_dir, metric):
    return {(r["round"], r["client"]): r["value"] for r in read_records(run_dir / "records.jsonl")
            if r["benchmark"] == "comm" and r["metric"] == metric}


def test_fedavg_under_secure_aggregation_with_a_dropped_client_ends_where_plain_fedavg_does(world5, tmp_path):
    args = (f"data.root={world5}", "method=fedavg", "federation.min_clients=2")
    plain = fedma_run(2, tmp_path / "plain", *args, env=DROP)
    assert plain.returncode == 0, plain.stderr[-2000:]
    masked = fedma_run(2, tmp_path / "secagg", *args, "federation.secure_aggregation=true", env=DROP)
    assert masked.returncode == 0, masked.stderr[-2000:]
    want, got = projector(tmp_path / "plain"), projector(tmp_path / "secagg")
    # a failed recovery leaves masks of size ~2^31 in the sum; fixed point alone moves float32 by an ulp
    for k in want:
        assert torch.allclose(got[k], want[k], rtol=1e-4, atol=1e-6), (k, (got[k] - want[k]).abs().max())
    dropped = [(r["round"], r["client"]) for r in read_records(tmp_path / "secagg" / "records.jsonl")
               if r["metric"] == "dropped"]
    assert dropped == [(2, 1)]
    entries = sum(v.numel() for v in want.values()) + 1                  # every entry and n_k, 8 bytes each
    up = comm(tmp_path / "secagg", "bytes_up")
    assert up[2, 1] == 0 and {v for key, v in up.items() if key != (2, 1)} == {8 * entries}


def test_topk_residuals_survive_kill_and_resume_bit_identically(world5, tmp_path):
    args = (f"data.root={world5}", "method=fedavg", "federation.compression=topk", "federation.topk_fraction=0.05")
    whole, resumed = kill_then_resume(1, tmp_path, args, "kill:round=2:phase=train")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    residuals = load_file(str(tmp_path / "cut" / "checkpoints" / "round_003" / "client_state.safetensors"))
    assert sorted({key.split("/")[1] for key in residuals}) == ["0", "1", "2", "3", "4"]
    kept = sum(math.ceil(0.05 * v.numel()) for v in whole.values())
    assert set(comm(tmp_path / "whole", "bytes_up").values()) == {8 * kept}   # int32 index + float32 value
