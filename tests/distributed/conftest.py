import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from harness.data.synthetic import write_synthetic_federation

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def worker_env(env=None) -> dict:
    """The environment of torchrun ranks: this checkout importable, one thread, faults only if asked."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))   # keep a carried site dir
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **(env or {})}
    if "FEDMA_INJECT" not in (env or {}):
        full_env.pop("FEDMA_INJECT", None)
    return full_env


def torchrun(nproc: int, *args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """Run a module or script under a real torchrun world of ``nproc`` CPU processes."""
    cmd = [str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}", *args]
    return run_session(cmd, env=worker_env(env), timeout=timeout)


def run_session(cmd, env, timeout) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own session and kill the whole session on timeout (no orphaned ranks)."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n[test] killed after {timeout} s"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def fedma_run(nproc: int, out, *overrides, env=None, resume=False):
    extra = ["--resume"] if resume else []
    return torchrun(nproc, "-m", "harness.cli", "run", "tiny", *overrides, "--out", str(out), *extra, env=env)


def projector(run_dir, name="projector"):
    return load_file(str(Path(run_dir) / "final" / f"{name}.safetensors"))


@pytest.fixture(scope="session")
def world5(tmp_path_factory):
    """5 clients x 3 rounds x 16 samples (+16 held out), with one corrupt image and one empty caption
    per client-round."""
    return write_synthetic_federation(tmp_path_factory.mktemp("data") / "syn5", clients=5, rounds=3,
                                      per_round=16, heldout=16, corrupt=True)


def kill_then_resume(nproc: int, tmp_path, args, kill: str):
    """The same federation whole and killed (``FEDMA_INJECT=kill:...``) then resumed: both final projectors."""
    whole = fedma_run(nproc, tmp_path / "whole", *args)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = fedma_run(nproc, tmp_path / "cut", *args, env={"FEDMA_INJECT": kill})
    assert killed.returncode != 0 and not (tmp_path / "cut" / "final").exists()
    resumed = fedma_run(nproc, tmp_path / "cut", *args, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return projector(tmp_path / "whole"), projector(tmp_path / "cut")
