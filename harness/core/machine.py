"""Where something ran: the CPU, cores, torch and GPU, as a run's ``machine.json`` line and as a study's or a
tuning's record (what ``fedma study --verify`` compares before it asks for equal bits)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return cpu or platform.processor()


def machine() -> dict:
    """The build a float result depends on: CPU model, usable cores, Python, torch, its CPU kernels."""
    import torch
    return {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "python": platform.python_version(),
            "torch": torch.__version__, "capability": torch.backends.cpu.get_cpu_capability()}


def machine_line() -> str:
    """Where a run ran, in one line (the HTML report's run list): host, CPU, cores, torch, GPU."""
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.node()}: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {gpu}"
