"""Two nodes on one machine (tests/distributed/nodes.py: two torchrun agents, each in its own UTS, mount
and PID namespace with its own hostname and /etc/hosts, meeting at a c10d rendezvous on node1), one rank
each: the tiny preset with Fed-CMP, 2 rounds. What docs/multinode.md cites for real clusters."""
import json
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from harness.core.records import read_records
from tests.distributed.conftest import fedma_run, projector
from tests.distributed.nodes import rendezvous_ranks, torchrun_nodes, wait_all

pytestmark = pytest.mark.dist
ARGS = ("method=fedcmp", "rounds=2")
NODE_TIMEOUT = 600
HEARTBEAT = ("federation.heartbeat_s=10",)


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def run_cmd(data, out, *extra):
    return ["-m", "harness.cli", "run", "tiny", f"data.root={data}", *ARGS, *extra, "--out", str(out)]


def logs(nodes) -> str:
    return "\n".join(f"--- {n.name} ---\n{n.output()[-2500:]}" for n in nodes)


def machine_state():
    """What a node must not change on the machine: /etc/hosts, the mounts over it, the hostname."""
    hosts_mounts = [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if " /etc/hosts " in ln]
    return Path("/etc/hosts").read_bytes(), hosts_mounts, socket.gethostname()


def test_nodes_have_their_own_names_and_addresses_and_leave_nothing_behind(tmp_path):
    """The helper itself: each node's worker sees its own hostname, resolving to its own address, and its
    rank from the rendezvous; after a block that fails, no process of either node is left, and the
    machine's /etc/hosts, mounts and hostname are as before (the bind mounts lived in the nodes' own
    mount namespaces)."""
    before = machine_state()
    show = 'echo "seen: $(hostname) $RANK $(getent hosts $(hostname))"; sleep 600'
    with pytest.raises(RuntimeError, match="a failing test"), \
            torchrun_nodes(2, 1, ["--no-python", "sh", "-c", show], tmp_path) as nodes:
        deadline = time.monotonic() + 120
        while not all("seen:" in n.output() for n in nodes):
            assert time.monotonic() < deadline, logs(nodes)
            time.sleep(0.2)
        pids = [p for n in nodes for p in n.pids()]
        raise RuntimeError("a failing test")
    seen = [next(ln.split() for ln in n.output().splitlines() if ln.startswith("seen:")) for n in nodes]
    assert seen == [["seen:", "node1", "0", "127.0.0.2", "node1"], ["seen:", "node2", "1", "127.0.0.3", "node2"]]
    assert len(pids) >= 6 and not [p for p in pids if Path(f"/proc/{p}").exists()]   # agent, sh, sleep per node
    assert machine_state() == before


@pytest.fixture(scope="module")
def one_node(world5, tmp_path_factory):
    """The reference: one node, two ranks (torchrun --standalone), the same client groups (1 rank each)."""
    out = tmp_path_factory.mktemp("one") / "run"
    res = fedma_run(2, out, f"data.root={world5}", *ARGS)
    assert res.returncode == 0, res.stderr[-2000:]
    return projector(out)


def test_two_nodes_of_one_rank_equal_one_node_of_two(world5, one_node, tmp_path):
    """Rank 0 on node1 and rank 1 on node2 (the agents' rendezvous result, the run's machine.json); the
    projector bit for bit that of one node: the same groups train the same clients, so the same numbers."""
    out = tmp_path / "run"
    with torchrun_nodes(2, 1, run_cmd(world5, out), tmp_path / "nodes") as nodes:
        codes = wait_all(nodes, NODE_TIMEOUT)
    assert codes == [0, 0], logs(nodes)
    assert [rendezvous_ranks(n) for n in nodes] == [[0], [1]], logs(nodes)
    assert json.loads((out / "machine.json").read_text())["machine"].startswith("node1:")
    assert same(projector(out), one_node)
    assert sorted({r["round"] for r in read_records(out / "records.jsonl") if r["benchmark"] == "heldout"}) == [1, 2]


@contextmanager
def in_round_2(data, out, workdir):
    """Two nodes on the federation (heartbeat 10 s), yielded once round 1 is checkpointed. Round 2 is
    slowed by 1 s per step (FEDMA_INJECT=slow changes no number), so a fault always lands inside it."""
    with torchrun_nodes(2, 1, run_cmd(data, out, *HEARTBEAT), workdir, env={"FEDMA_INJECT": "slow:round=2"}) as nodes:
        deadline = time.monotonic() + NODE_TIMEOUT
        while not (out / "checkpoints" / "round_001" / "state.json").exists():
            assert time.monotonic() < deadline and all(n.proc.poll() is None for n in nodes), logs(nodes)
            time.sleep(0.2)
        yield nodes


def error_lines(node, rank):
    return [ln for ln in node.output().splitlines() if ln.startswith(f"error: rank {rank}:")]


def only_round_1_checkpointed(out):
    return sorted(p.name for p in (out / "checkpoints").glob("round_*")) == ["round_001"] and not (out / "final").exists()


def test_a_node_killed_in_round_2_stops_the_survivor_and_both_nodes_resume_bit_identically(world5, one_node, tmp_path):
    """node2 (rank 1) is SIGKILLed whole. node1 (rank 0, the server) stops by itself, with one error line
    naming --resume (gloo sees the closed sockets at the next collective, or the heartbeat goes silent);
    the round-1 checkpoint is intact, and --resume on both nodes ends bit for bit where one node does."""
    out = tmp_path / "run"
    with in_round_2(world5, out, tmp_path / "cut") as nodes:
        nodes[1].kill()
        code = nodes[0].wait(120)       # bounded: the survivor must stop by itself, not at our deadline
    assert code not in (0, None), logs(nodes)
    errors = error_lines(nodes[0], 0)
    assert len(errors) == 1 and "--resume" in errors[0], logs(nodes)
    assert "another rank stopped during a collective" in errors[0] or "rank 1 has sent no heartbeat" in errors[0]
    assert only_round_1_checkpointed(out)
    with torchrun_nodes(2, 1, [*run_cmd(world5, out, *HEARTBEAT), "--resume"], tmp_path / "resume") as nodes:
        codes = wait_all(nodes, NODE_TIMEOUT)
    assert codes == [0, 0], logs(nodes)
    assert same(projector(out), one_node)
    assert sorted(r["round"] for r in read_records(out / "records.jsonl") if r["benchmark"] == "heldout") == [1, 2]


def test_a_hung_node_holding_rank_0_and_the_stores_stops_the_survivor_rank(world5, tmp_path):
    """node1 is SIGSTOPped whole: rank 0, the torchrun agent hosting the rendezvous and the workers' store,
    every socket left open. Rank 1 (node2) stops within heartbeat_s with one error line (its store calls
    never return, so the watchdog times them itself); the round-1 checkpoint is intact. node2's torchrun
    agent itself stays blocked on node1's frozen rendezvous store: torch's, see docs/multinode.md."""
    out = tmp_path / "run"
    with in_round_2(world5, out, tmp_path / "cut") as nodes:
        nodes[0].freeze()
        deadline = time.monotonic() + 120   # bounded: the rank must stop by itself
        while not error_lines(nodes[1], 1) and time.monotonic() < deadline:
            time.sleep(0.5)
    errors = error_lines(nodes[1], 1)
    assert len(errors) == 1 and "store has not answered for 10 s" in errors[0] and "--resume" in errors[0], logs(nodes)
    assert only_round_1_checkpointed(out)
