"""Run a federation on this machine: ``torchrun --standalone --nproc_per_node N -m harness.cli run ...``."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence


def torchrun_command(nproc: int, config: str, overrides: Sequence[str], out, resume: bool = False,
                     python: Optional[str] = None) -> List[str]:
    cmd = [python or sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "harness.cli", "run", config, *overrides, "--out", str(out)]
    return cmd + (["--resume"] if resume else [])


def run_local(nproc: int, config: str, overrides: Sequence[str], out, resume: bool = False,
              env: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> int:
    """Start the world and wait for it; returns torchrun's exit code. The ranks run in their own
    session, killed as a whole if ``timeout`` passes, so no rank outlives the launcher."""
    full_env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **(env or {})}
    Path(out).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(torchrun_command(nproc, config, overrides, out, resume), env=full_env,
                            start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
