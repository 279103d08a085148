"""Test driver: a real federation (round engine, DeepSpeed CPU, gloo) with the lmms-eval hook.

    torchrun --nproc_per_node N tests/eval/run_engine.py DATA BENCHDATA OUT [key=value ...]
"""
import sys
from functools import partial

from harness.core.config import load_config
from harness.engine.rounds import run_federation
from harness.eval.hook import lmms_hook
from harness.engine.runner import quiet_libraries

if __name__ == "__main__":
    data, bench, out, *overrides = sys.argv[1:]
    quiet_libraries()
    cfg = load_config("tiny", [f"data.root={data}", f"eval.data_root={bench}", "eval.tasks=[pope, mme]",
                               "eval.final_tasks=[mmvet]", *overrides])
    run_federation(cfg, out, eval_hook=partial(lmms_hook, max_new_tokens=4))
