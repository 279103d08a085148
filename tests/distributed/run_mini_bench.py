"""Test driver: a Fed-MA-mini federation whose every round is scored on the mini benchmarks.

    torchrun --nproc_per_node N tests/distributed/run_mini_bench.py WORLD BENCH OUT [key=value ...]
"""
import sys

from harness.core.config import load_config
from harness.engine.rounds import run_federation
from harness.mini.bench import eval_overrides
from harness.engine.runner import evaluation_hooks, quiet_libraries

if __name__ == "__main__":
    data, bench, out, *overrides = sys.argv[1:]
    quiet_libraries()
    cfg = load_config("mini", [f"data.root={data}", *eval_overrides(bench), *overrides])
    run_federation(cfg, out, eval_hook=evaluation_hooks)
