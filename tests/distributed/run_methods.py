"""Test driver: several federations in one torchrun world (saves process start-up per method).

    torchrun --nproc_per_node N tests/distributed/run_methods.py DATA OUT method1,method2 [key=value ...]
"""
import sys

from harness.core.config import load_config
from harness.engine.rounds import run_federation
from harness.eval.heldout import heldout_hook
from harness.engine.runner import quiet_libraries

if __name__ == "__main__":
    data, out, methods, *overrides = sys.argv[1:]
    quiet_libraries()
    for method in methods.split(","):
        cfg = load_config("tiny", [f"data.root={data}", f"method={method}", *overrides])
        run_federation(cfg, f"{out}/{method}", eval_hook=heldout_hook)
