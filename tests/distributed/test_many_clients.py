"""A hundred clients, ten per round (past the paper's five): the round engine deals the sampled clients
over the torchrun groups, and a kill -9 in round 2 resumes bit-identically."""
import random

import pytest
import torch

from harness.data.synthetic import write_synthetic_federation
from harness.core.records import read_records
from tests.distributed.conftest import fedma_run, projector

pytestmark = pytest.mark.dist
K, M = 100, 10


@pytest.fixture(scope="module")
def world100(tmp_path_factory):
    return write_synthetic_federation(tmp_path_factory.mktemp("data") / "syn100", clients=K, rounds=2,
                                      per_round=8, heldout=8)


def test_100_clients_10_per_round_resume_bit_identically(world100, tmp_path):
    args = (f"data.root={world100}", "method=fedcmp", "rounds=2", f"federation.clients={K}",
            f"federation.clients_per_round={M}")
    whole = fedma_run(2, tmp_path / "whole", *args)
    assert whole.returncode == 0, whole.stderr[-2000:]
    trained = {}
    for r in read_records(tmp_path / "whole" / "records.jsonl"):
        if r["benchmark"] == "train" and r["metric"] == "loss":
            trained.setdefault(r["round"], []).append(r["client"])
    # the seeded sample: random.Random("participants-{seed}-{round}").sample(range(K), M), sorted
    assert {t: sorted(c) for t, c in trained.items()} == {
        t: sorted(random.Random(f"participants-0-{t}").sample(range(K), M)) for t in (1, 2)}
    cut = fedma_run(2, tmp_path / "cut", *args, env={"FEDMA_INJECT": "kill:round=2:phase=train:rank=1"})
    assert cut.returncode != 0 and not (tmp_path / "cut" / "final").exists()
    resumed = fedma_run(2, tmp_path / "cut", *args, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = projector(tmp_path / "whole"), projector(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_dp_run_records_the_privacy_spent_and_resumes_bit_identically(world100, tmp_path):
    """DP-FedAvg on 100 clients, 10 per round (q = 0.1), z = 1.2: epsilon at delta = 1e-5 after rounds 1
    and 2 equals the independently computed RDP bound, and a kill -9 in round 2 resumes to the same bits
    (the noise is seeded by round)."""
    from tests.unit.test_past_the_paper import independent_epsilon
    args = (f"data.root={world100}", "method=fedavg", "rounds=2", f"federation.clients={K}",
            f"federation.clients_per_round={M}", "privacy.clip=0.05", "privacy.noise_multiplier=1.2")
    whole = fedma_run(1, tmp_path / "whole", *args)
    assert whole.returncode == 0, whole.stderr[-2000:]
    eps = {r["round"]: r["value"] for r in read_records(tmp_path / "whole" / "records.jsonl")
           if r["benchmark"] == "privacy" and r["metric"] == "epsilon"}
    assert eps == {t: pytest.approx(independent_epsilon(M / K, 1.2, t, 1e-5), rel=1e-6) for t in (1, 2)}
    cut = fedma_run(1, tmp_path / "cut", *args, env={"FEDMA_INJECT": "kill:round=2:phase=aggregate"})
    assert cut.returncode != 0
    assert fedma_run(1, tmp_path / "cut", *args, resume=True).returncode == 0
    a, b = projector(tmp_path / "whole"), projector(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_outages_follow_the_seeded_draw_and_stragglers_report_simulated_time(world100, tmp_path):
    """availability 0.7: client k of round t is down iff random.Random(f"up-0-{t}-{k}").random() >= 0.7
    (among the sampled ten); the others train and record a simulated time; no deadline, nothing late."""
    res = fedma_run(1, tmp_path / "r", f"data.root={world100}", "method=fedavg", "rounds=2", f"federation.clients={K}",
                    f"federation.clients_per_round={M}", "federation.availability=0.7", "federation.speed_spread=0.5")
    assert res.returncode == 0, res.stderr[-2000:]
    recs = read_records(tmp_path / "r" / "records.jsonl")
    for t in (1, 2):
        sampled = sorted(random.Random(f"participants-0-{t}").sample(range(K), M))
        down = {k for k in sampled if random.Random(f"up-0-{t}-{k}").random() >= 0.7}
        assert {r["client"] for r in recs if r["round"] == t and r["metric"] == "down"} == down
        timed = {r["client"] for r in recs if r["round"] == t and r["benchmark"] == "train" and r["metric"] == "seconds"}
        assert timed == set(sampled) - down
    assert not any(r["metric"] == "dropped" for r in recs)
