"""A real (local) Slurm for the session: slurm/local_cluster.sh start ... stop.

Without root or when the cluster cannot start, the tests skip with the reason, unless
FEDMA_REQUIRE_SLURM=1 (set by .ci/run): then they fail.
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.data.synthetic import write_synthetic_federation

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "slurm" / "local_cluster.sh"


def _unavailable(reason: str):
    if os.environ.get("FEDMA_REQUIRE_SLURM") == "1":
        pytest.fail(f"FEDMA_REQUIRE_SLURM=1 but the local Slurm cluster is unavailable: {reason}", pytrace=False)
    pytest.skip(f"local Slurm cluster unavailable ({reason}); set FEDMA_REQUIRE_SLURM=1 to make this a failure")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="package")
def slurm_cluster(tmp_path_factory):
    """Start the cluster (installing Debian packages if needed), export SLURM_CONF, stop it after the last
    test of tests/slurm (package scope: the exported SLURM_CONF and PYTHONPATH end with the folder, even on
    a pytest-xdist worker that goes on to other files)."""
    if os.geteuid() != 0:
        _unavailable("slurm/local_cluster.sh needs root (daemons, /etc/hosts, apt-get)")
    state = tmp_path_factory.mktemp("slurm")
    # own ports, so a cluster a developer left running (default ports) does not collide with this one
    env = {**os.environ, "FEDMA_SLURM_DIR": str(state), "FRESH": "1", "CTLD_PORT": str(_free_port()),
           "NODE_PORT0": str(_free_port())}
    try:
        res = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        res = None
    if res is None or res.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        _unavailable("start failed: " + ("timed out after 300 s" if res is None else res.stderr[-1500:]))
    saved = {k: os.environ.get(k) for k in ("SLURM_CONF", "PYTHONPATH", "OMP_NUM_THREADS")}
    # sbatch exports the submitting environment to the job: the tasks import this checkout
    os.environ.update(SLURM_CONF=str(state / "slurm.conf"), OMP_NUM_THREADS="1",
                      PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    try:
        yield state
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="package")
def slurm_data(tmp_path_factory):
    """5 clients x 2 rounds x 16 samples (+16 held out): small enough for 2 cores."""
    return write_synthetic_federation(tmp_path_factory.mktemp("sdata") / "syn", clients=5, rounds=2,
                                      per_round=16, heldout=16)


def wait_job(job, timeout: float):
    """``job.results()`` with a wall-clock limit of our own (a job killed hard never writes a result)."""
    deadline = time.time() + timeout
    while not job.done():
        if time.time() > deadline:
            job.cancel(check=False)
            tail = (job.stderr() or "(no log)")[-3000:]
            pytest.fail(f"job {job.job_id} not done after {timeout} s; stderr tail:\n{tail}", pytrace=False)
        time.sleep(1)
    return job.results()


def wait_sbatch(job_id: str, timeout: float) -> str:
    """Poll scontrol until the job leaves the queue; returns its final JobState."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        state = next((w.split("=", 1)[1] for w in out.split() if w.startswith("JobState=")), "UNKNOWN")
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"):
            return state
        time.sleep(1)
    subprocess.run(["scancel", job_id])
    pytest.fail(f"sbatch job {job_id} not finished after {timeout} s", pytrace=False)


def fedma(*args, timeout=600) -> subprocess.CompletedProcess:
    from tests.distributed.conftest import run_session
    return run_session([sys.executable, "-m", "harness.cli", *map(str, args)], env=dict(os.environ), timeout=timeout)
