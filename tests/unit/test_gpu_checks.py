"""The GPU script is prepared on a CPU: it parses, and its dry run shows every step and checks each
can start (modules parse their arguments, pytest collects the GPU tests)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
SCRIPT = Path(__file__).resolve().parents[2] / "perf" / "gpu_checks.sh"


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_dry_run_lists_every_step_and_measures_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FEDMA_CACHE"}   # the inner pytest sets its own
    res = subprocess.run(["bash", str(SCRIPT), "--dry-run", str(tmp_path / "out"), sys.executable],
                         cwd=SCRIPT.parents[1], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    steps = [line.split(" (limit")[0][3:] for line in res.stdout.splitlines() if line.startswith("== ")]
    assert steps == ["gpu_tests", "gpu_bench", "agg_cuda", "agg_cuda_k", "agg_cpu"]
    assert "tests/gpu/test_llava7b.py::test_llava15_7b_bf16_zero2_federation" in res.stdout
    assert "dry run: rc=0" in res.stdout and list((tmp_path / "out").iterdir()) == []
