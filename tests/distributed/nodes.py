"""Several torchrun "nodes" on one machine: each agent in its own UTS, mount and PID namespace.

A node is ``unshare --uts --mount --pid --fork --mount-proc`` around one torchrun agent, with its own
hostname (``node1``, ``node2``, ...) and a private ``/etc/hosts`` bind-mounted over the real one (the
mount lives in the node's own mount namespace: the machine's file is never written) that maps every
node name to its own loopback address (127.0.0.2, 127.0.0.3, ...). That is what a real cluster looks
like to torch's c10d rendezvous: it tells nodes apart by hostname and pid (one shared name hangs the
rendezvous), and the agent that becomes rank 0 hosts the workers' store under its own hostname. The
agents meet at a c10d rendezvous on the first node (``node1:PORT``), as the sbatch template does.

A node dies whole when its namespace's init (the agent) is SIGKILLed: the kernel then kills every
process of the namespace. Nodes always end with the ``with`` block (SIGKILL, then reaped), and the
``unshare`` processes carry PR_SET_PDEATHSIG and ``--kill-child``, so even a killed pytest leaves no
node behind. As root it needs nothing else; otherwise it adds a user namespace (``--map-root-user``),
which needs unprivileged user namespaces (most Linux distributions allow them).
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional

from tests.distributed.conftest import BIN, REPO, worker_env

PR_SET_PDEATHSIG = 1


def node_name(i: int) -> str:
    return f"node{i + 1}"


def node_addr(i: int) -> str:
    return f"127.0.0.{i + 2}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the test process dies (no node outlives a killed pytest)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Node:
    """One node: the ``unshare`` process, its namespace's init (the torchrun agent) and its log."""

    def __init__(self, index: int, proc: subprocess.Popen, log: Path):
        self.index, self.name, self.proc, self.log = index, node_name(index), proc, log
        self._init: Optional[int] = None

    def init_pid(self) -> Optional[int]:
        """The agent's pid in our namespace (the only child of ``unshare --fork``); None once the node is gone."""
        deadline = time.monotonic() + 30
        while self._init is None and self.proc.poll() is None:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            found = children.read_text().split() if children.exists() else []
            if found:
                self._init = int(found[0])
            elif time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: unshare started no namespace init in 30 s: {self.output()[-2000:]}")
            else:
                time.sleep(0.05)
        return self._init

    def pids(self) -> List[int]:
        """Every process of this node (those in the init's PID namespace); [] once it is gone."""
        ns = _pid_ns(str(self.init_pid()))
        return [int(p) for p in os.listdir("/proc") if p.isdigit() and ns and _pid_ns(p) == ns]

    def kill(self) -> None:
        """The node dies whole: SIGKILL its namespace's init, and the kernel kills the rest."""
        pid = self.init_pid()
        if pid is not None and self.proc.poll() is None:   # unshare alive: the pid is still its child's
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        """A hung node: every process stopped, sockets left open (only heartbeats can tell)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float) -> Optional[int]:
        """The node's exit code (torchrun's), or None if it is still running after ``timeout`` s."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _pid_ns(pid: str) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def node_command(i: int, count: int, nproc: int, port: int, run_id: str, hosts: Path, args) -> List[str]:
    """``unshare`` around: set the hostname, mount the private hosts file, exec the torchrun agent."""
    torchrun = [str(BIN / "torchrun"), f"--nnodes={count}", f"--nproc_per_node={nproc}", "--max_restarts=0",
                f"--rdzv_id={run_id}", "--rdzv_backend=c10d", f"--rdzv_endpoint={node_name(0)}:{port}", *map(str, args)]
    inner = f'hostname {node_name(i)} && mount --bind {hosts} /etc/hosts && exec "$@"'
    as_root = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]   # unprivileged: a user namespace too
    return ["unshare", *as_root, "--uts", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
            "sh", "-c", inner, "sh", *torchrun]


@contextmanager
def torchrun_nodes(count: int, nproc: int, args, workdir: Path, env: Optional[Dict[str, str]] = None):
    """Start ``count`` nodes of ``nproc`` ranks each running ``torchrun ... ARGS``; yields the nodes.

    On leaving, every node still alive is SIGKILLed whole, and the block ends once no process of any
    node is left, whatever happened inside.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = workdir / "hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{node_addr(i)} {node_name(i)}\n" for i in range(count)))
    full_env = worker_env({"LOGLEVEL": "INFO", **(env or {})})   # INFO: the agents log their rendezvous result
    port, run_id = free_port(), f"nodes{os.getpid()}x{time.monotonic_ns()}"
    nodes: List[Node] = []
    try:
        for i in range(count):
            log = workdir / f"{node_name(i)}.log"
            with open(log, "w") as f:
                proc = subprocess.Popen(node_command(i, count, nproc, port, run_id, hosts, args), cwd=REPO,
                                        env=full_env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent)
            nodes.append(Node(i, proc, log))
        yield nodes
    finally:
        for node in nodes:
            node.kill()
        for node in nodes:   # unshare exits once its init is reaped, and that waits for the whole namespace
            if node.wait(30) is None:
                node.proc.kill()
                node.proc.wait()


def wait_all(nodes: List[Node], timeout: float) -> List[Optional[int]]:
    """Every node's exit code; a node still running at the deadline is killed and reads None."""
    deadline = time.monotonic() + timeout
    codes = [node.wait(max(0.0, deadline - time.monotonic())) for node in nodes]
    for node, code in zip(nodes, codes):
        if code is None:
            node.kill()
    return codes


def rendezvous_ranks(node: Node) -> List[int]:
    """The global ranks this node's agent was given (torchrun's INFO line ``global_ranks=[...]``)."""
    for line in node.output().splitlines():
        if "global_ranks=" in line:
            return [int(r) for r in line.split("global_ranks=", 1)[1].strip(" []").split(",") if r.strip()]
    return []
