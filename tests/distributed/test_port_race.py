"""A world of one picks a free port, then binds it: another process can take it in between (two ``fedma
run`` started at once; CI saw it). The run takes another port instead of failing."""
import subprocess
import sys

import pytest

from tests.distributed.conftest import REPO, worker_env

pytestmark = pytest.mark.dist

SCRIPT = """
import os, socket
from datetime import timedelta
import torch.distributed
from harness.engine import dist
taken = socket.socket(); taken.bind(("127.0.0.1", 0)); taken.listen()      # the port someone else holds
port = taken.getsockname()[1]
world_of_one = dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
os.environ.update(world_of_one)
try:                                                  # one try: the clash itself
    dist._init_process_group("gloo", timedelta(seconds=30), own_port=True, tries=1)
    print("clash False")
except torch.distributed.DistNetworkError as e:
    print("clash", "EADDRINUSE" in str(e))
for key in world_of_one:
    del os.environ[key]
ports = iter([port])
real = dist._free_port
dist._free_port = lambda: next(ports, None) or real()  # the probe returns the taken port first
world = dist.init_world(clients=1, timeout_s=30)
print("ports", port, os.environ["MASTER_PORT"], world.size)
"""


def test_a_world_of_one_whose_port_was_taken_takes_another():
    env = {k: v for k, v in worker_env().items() if k not in ("RANK", "WORLD_SIZE", "MASTER_PORT", "MASTER_ADDR")}
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in res.stdout.splitlines() if line.startswith(("clash", "ports")))
    assert lines["clash"] == "True"
    taken, used, size = lines["ports"].split()
    assert taken != used and size == "1"
