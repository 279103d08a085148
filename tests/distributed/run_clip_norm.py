"""Test driver: one client trained by a group of all the world's ranks; writes, per ZeRO stage, the
gradient norm DeepSpeed clips with and the true norm of the group-averaged gradient.

    torchrun --nproc_per_node 2 tests/distributed/run_clip_norm.py DATA OUT.json
"""
import json
import sys

import torch
import torch.distributed as dist

from harness.engine.client import ClientTrainer, TrainSettings
from harness.core.config import ClientConfig
from harness.data.layout import round_dir
from harness.data.reader import SkipReport, ordered_samples
from harness.engine.dist import init_world
from harness.model.build import build_bundle, init_projector, projector
from harness.engine.runner import quiet_libraries


def norms(trainer, batch, start):
    """(DeepSpeed's clipping norm, the true norm) after one step with clipping out of the way."""
    trainer.reset(start)
    inputs = trainer.collate(batch)
    loss, _, _ = trainer.engine(inputs["input_ids"], inputs["attention_mask"], inputs["labels"], trainer.features(batch))
    trainer.engine.backward(loss)
    if trainer.client.zero_stage == 0:   # the averaged gradients are on the parameters; DeepSpeed's own clip
        from deepspeed.runtime.utils import clip_grad_norm_
        params = [p for p in projector(trainer.bundle.model).parameters()]
        true = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)))
        return float(clip_grad_norm_(params, 1e9, mpu=trainer.engine.mpu)), true
    trainer.engine.step()
    return float(trainer.engine.get_global_grad_norm()), None


if __name__ == "__main__":
    data, out = sys.argv[1:]
    quiet_libraries()
    world = init_world(1, 600)                     # one client: its group is every rank
    bundle = build_bundle("tiny")
    samples = list(ordered_samples(round_dir(data, 0, 1), 0, 0, 1, SkipReport()))
    mine = samples[dist.get_rank()::dist.get_world_size()]
    start = init_projector(bundle.model, 0)
    got = {stage: norms(ClientTrainer(bundle, ClientConfig(batch_size=len(mine), zero_stage=stage, grad_clip=1e9),
                                      TrainSettings(), world.group), mine, start) for stage in (0, 2)}
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump({"group": world.groups[world.group_index], "norms": got}, f)
