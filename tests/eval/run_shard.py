"""The lmms hook on one projector; run under torchrun by tests/eval/test_sharded.py (rank 0 writes JSON),
and called in process (a world of one) for the reference.

    python -m tests.eval.run_shard DATA_ROOT OUT.json
"""
import json
import os
import sys
from types import SimpleNamespace

import torch


def evaluate_once(world, data_root: str):
    """(records, every generated answer in order, the adapter) for the tiny model with projector seed 7."""
    from harness.core.config import load_config
    from harness.eval.hook import adapter_for, lmms_hook
    from harness.model.build import build_bundle, init_projector
    cfg = load_config("tiny", [f"eval.data_root={data_root}", "eval.tasks=[pope, mme, seed, mmbench, mmvet]",
                               "eval.batch_size=3", "federation.rounds=5"])
    bundle = build_bundle("tiny")
    lm = adapter_for(bundle, "cpu", cfg.eval.batch_size, 6)
    answers, plain = [], lm.generate_until

    def recording(reqs):
        got = plain(reqs)
        answers.extend(got)
        return got
    lm.generate_until = recording
    ctx = SimpleNamespace(cfg=cfg, world=world, trainer=SimpleNamespace(bundle=bundle, device="cpu"), round=1,
                          global_state=init_projector(bundle.model, 7), targets={}, base_record={})
    return lmms_hook(ctx, max_new_tokens=6), answers, lm


def main(data_root: str, out: str) -> None:
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    control = dist.new_group(list(range(size)), backend="gloo")

    def broadcast(obj):
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=control)
        return box[0]

    world = SimpleNamespace(rank=rank, size=size, is_server=rank == 0, control=control, broadcast=broadcast)
    records, answers, lm = evaluate_once(world, data_root)
    computed = [None] * size
    dist.all_gather_object(computed, lm.calls["computed"], group=control)
    assert os.environ.get("WORLD_SIZE") == str(size)   # restored after lmms-eval ran
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"records": records, "size": size, "answers": answers, "computed": computed,
                       "seen": lm.calls["generate_until"]}, f)
    else:
        assert records == []
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
