"""The server takes typed client reports (ClientResult / FailedClient, Flower's FitRes and failures) and
builds its failures list without changing any result: a result without samples or with a NaN becomes a
FailedClient that carries it, the rest are aggregated (FedAvg of one client: its state, by hand)."""
import dataclasses

import pytest
import torch

from harness.core.config import load_config
from harness.core.rundir import RunDir
from harness.core.records import read_records
from harness.engine.server import Server
from harness.core.types import ClientResult, FailedClient

pytestmark = pytest.mark.unit


def result(k, w, n=4):
    return ClientResult(k, {"w": torch.tensor(w)}, n, 0.25, 1.5, 2.0, keys=[f"s{k}"], skipped={"bad": k})


def test_failures_are_listed_and_no_result_is_changed(tmp_path):
    cfg = load_config("tiny", ["method=fedavg", "federation.clients=4", "federation.min_clients=1"])
    server = Server(cfg, tmp_path, {"w": torch.tensor([0.0, 0.0])}, {"run_id": "t"})
    good, nan, empty = result(0, [1.0, 3.0]), result(1, [float("nan"), 0.0]), result(2, [5.0, 5.0], n=0)
    before = [dataclasses.replace(r) for r in (good, nan, empty)]
    server.aggregate(1, [FailedClient(3, "RuntimeError: boom"), empty, nan, good])   # any order in
    assert [r.client_id for r in server.accepted] == [0]
    assert [(f.client_id, f.error) for f in server.failures] == [
        (1, "non-finite values in w"), (2, "no samples this round"), (3, "RuntimeError: boom")]
    assert server.failures[0].result is nan and server.failures[2].result is None
    for r, b in zip((good, nan, empty), before):
        assert r.client_id == b.client_id and r.num_samples == b.num_samples and r.state is b.state
    assert server.global_state["w"].tolist() == [1.0, 3.0]
    assert server.last_round_summary == {"clients": 1, "of": 4, "loss": 1.5, "align_error": 0.25, "skipped": 0 + 1 + 2}
    dropped = {r["client"]: r["note"] for r in read_records(RunDir(tmp_path).records) if r["metric"] == "dropped"}
    assert dropped == {1: "non-finite values in w", 2: "no samples this round", 3: "RuntimeError: boom"}
    up = {r["client"]: r["value"] for r in read_records(RunDir(tmp_path).records) if r["metric"] == "bytes_up"}
    assert up == {0: 8.0, 1: 8.0, 2: 8.0, 3: 0.0}      # two float32 values each; nothing from client 3
