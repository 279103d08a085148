"""Kill-and-resume, injected faults and exactly-once consumption, in real torchrun worlds."""
import json

import pytest
import torch

from harness.data.layout import read_index, round_dir
from harness.data.synthetic import write_synthetic_federation
from harness.core.records import read_records
from tests.distributed.conftest import REPO, fedma_run, projector

pytestmark = pytest.mark.dist


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("nproc, kill", [(1, "kill:round=2:phase=train"),
                                         (1, "kill:round=2:phase=checkpoint"),
                                         (2, "kill:round=2:phase=train:rank=1"),
                                         (2, "kill:round=2:phase=aggregate:rank=0")])
def test_sigkill_then_resume_is_bit_identical(world5, tmp_path, nproc, kill):
    args = (f"data.root={world5}", "method=fedcmp")
    whole = fedma_run(nproc, tmp_path / "whole", *args)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = fedma_run(nproc, tmp_path / "cut", *args, env={"FEDMA_INJECT": kill})
    assert killed.returncode != 0
    assert not (tmp_path / "cut" / "final").exists()
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").glob("round_*")) == ["round_001"]
    resumed = fedma_run(nproc, tmp_path / "cut", *args, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert same(projector(tmp_path / "whole"), projector(tmp_path / "cut"))
    recs = read_records(tmp_path / "cut" / "records.jsonl")
    assert sorted(r["round"] for r in recs if r["benchmark"] == "heldout") == [1, 2, 3]


def test_resume_refuses_a_different_config(world5, tmp_path):
    first = fedma_run(1, tmp_path / "r", f"data.root={world5}", "method=fedavg", "rounds=1")
    assert first.returncode == 0, first.stderr[-2000:]
    again = fedma_run(1, tmp_path / "r", f"data.root={world5}", "method=fedavg", "rounds=2", resume=True)
    assert again.returncode != 0 and "error: --resume:" in again.stderr and "--allow-config-change" in again.stderr


def test_faulty_clients_are_dropped_and_recorded(world5, tmp_path):
    res = fedma_run(2, tmp_path / "f", f"data.root={world5}", "method=fedavg",
                    env={"FEDMA_INJECT": "raise:client=1:round=2,nan:client=3:round=2"})
    assert res.returncode == 0, res.stderr[-2000:]
    dropped = [r for r in read_records(tmp_path / "f" / "records.jsonl") if r["metric"] == "dropped"]
    assert sorted((r["round"], r["client"]) for r in dropped) == [(2, 1), (2, 3)]
    notes = {r["client"]: r["note"] for r in dropped}
    assert "injected failure" in notes[1] and "non-finite" in notes[3] and "linear_1.weight" in notes[3]
    final = projector(tmp_path / "f")
    assert all(torch.isfinite(v).all() for v in final.values())
    # communication: every client receives and sends the float32 projector each round, except that the
    # client that failed before training sent nothing
    size = 4 * sum(v.numel() for v in final.values())
    comm = {(r["round"], r["client"], r["metric"]): r["value"] for r in read_records(tmp_path / "f" / "records.jsonl")
            if r["benchmark"] == "comm"}
    assert len(comm) == 3 * 5 * 2
    assert {v for k, v in comm.items() if k != (2, 1, "bytes_up")} == {size} and comm[2, 1, "bytes_up"] == 0


def test_a_client_past_its_timeout_is_dropped(world5, tmp_path):
    res = fedma_run(1, tmp_path / "t", f"data.root={world5}", "method=fedavg", "rounds=2",
                    "federation.client_timeout_s=1.5", env={"FEDMA_INJECT": "slow:client=4:round=2"})
    assert res.returncode == 0, res.stderr[-2000:]
    dropped = [r for r in read_records(tmp_path / "t" / "records.jsonl") if r["metric"] == "dropped"]
    assert [(r["round"], r["client"]) for r in dropped] == [(2, 4)] and "client_timeout_s" in dropped[0]["note"]


def test_too_few_clients_stops_cleanly_with_checkpoint_intact(world5, tmp_path):
    res = fedma_run(2, tmp_path / "s", f"data.root={world5}", "method=fedavg", "federation.min_clients=5",
                    env={"FEDMA_INJECT": "raise:client=2:round=2"})
    assert res.returncode != 0   # torchrun reports the ranks' exit code 2 as 1
    assert "error: round 2: 4 client(s) left" in res.stderr and "min_clients=5" in res.stderr
    assert 'File "' + str(REPO / "harness") not in res.stderr   # one line from us (torchrun adds its own report)
    ckpts = sorted(p.name for p in (tmp_path / "s" / "checkpoints").glob("round_*"))
    assert ckpts == ["round_001"]
    state = json.loads((tmp_path / "s" / "checkpoints" / "round_001" / "state.json").read_text())
    assert state["round"] == 1 and not (tmp_path / "s" / "final").exists()


def test_every_sample_is_consumed_exactly_once_with_data_parallel_groups(tmp_path):
    """4 ranks, 2 clients: two groups of two data-parallel ranks; 21 samples per round (odd, so the
    last global batch of 2 x 8 is partial)."""
    data = write_synthetic_federation(tmp_path / "d", clients=2, rounds=3, per_round=21, heldout=8)
    res = fedma_run(4, tmp_path / "x", f"data.root={data}", "clients=2", "method=fedavg",
                    "federation.log_samples=true")
    assert res.returncode == 0, res.stderr[-2000:]
    seen = {0: [], 1: []}
    for t in (1, 2, 3):
        logged = json.loads((tmp_path / "x" / "samples" / f"round_{t:03d}.json").read_text())
        for client, keys in logged.items():
            seen[int(client)] += keys
    for client, keys in seen.items():
        expected = [f"c{client}r{t}s{i:04d}" for t in (1, 2, 3) for i in range(21)]
        assert sorted(keys) == sorted(expected)
        assert sum(read_index(round_dir(data, client, t))["count"] for t in (1, 2, 3)) == len(expected)


def test_fedprox_with_mu_zero_equals_plain_training(world5, tmp_path):
    a = fedma_run(1, tmp_path / "avg", f"data.root={world5}", "method=fedavg", "rounds=2")
    b = fedma_run(1, tmp_path / "prox", f"data.root={world5}", "method=fedprox", "rounds=2",
                  "aggregator.fedprox.mu=0.0")
    c = fedma_run(1, tmp_path / "prox1", f"data.root={world5}", "method=fedprox", "rounds=2",
                  "aggregator.fedprox.mu=10.0")
    assert a.returncode == b.returncode == c.returncode == 0, (a.stderr + b.stderr + c.stderr)[-2000:]
    assert same(projector(tmp_path / "avg"), projector(tmp_path / "prox"))
    assert not same(projector(tmp_path / "avg"), projector(tmp_path / "prox1"))


@pytest.mark.parametrize("fault, code, words", [("kill", 2, "another rank stopped during a collective"),
                                               ("freeze", 3, "rank 1 has sent no heartbeat")])
def test_a_dead_or_hung_rank_stops_the_others_in_seconds_and_the_run_resumes(world5, tmp_path, fault, code, words):
    """Two plain processes (as srun or submitit start them: no torchrun agent to stop the survivor). Rank 1
    is SIGKILLed (its sockets close: gloo notices) or SIGSTOPped (a hung node: only the heartbeat watchdog
    notices) in round 2's training. Rank 0 stops within heartbeat_s (5 s) plus a few seconds, with one
    error line, its round-1 checkpoint intact; --resume finishes the run."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["run", "tiny", f"data.root={world5}", "method=fedavg", "federation.heartbeat_s=5", "--out", str(tmp_path / "d")]
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
               "FEDMA_INJECT": f"{fault}:round=2:phase=train:rank=1"}
        procs.append(subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 600
    while not (tmp_path / "d" / "checkpoints" / "round_001" / "state.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    started = time.monotonic()
    try:
        _, err = procs[0].communicate(timeout=120)
    finally:
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
    waited = time.monotonic() - started
    lines = [ln for ln in err.splitlines() if ln.startswith("error: rank 0")]
    assert procs[0].returncode == code and waited < 40, (procs[0].returncode, waited, err[-2000:])
    assert len(lines) == 1 and words in lines[0] and "--resume" in lines[0], err[-2000:]
    assert sorted(p.name for p in (tmp_path / "d" / "checkpoints").glob("round_*")) == ["round_001"]
    resumed = fedma_run(2, tmp_path / "d", f"data.root={world5}", "method=fedavg", "federation.heartbeat_s=5", resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (tmp_path / "d" / "final" / "projector.safetensors").is_file()
