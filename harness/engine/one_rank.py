"""A client group of one rank (the CPU case: one process simulates every client; on GPUs, a client per
GPU) at ZeRO-0 in float32: DeepSpeed's per-step collectives have nothing to combine there, so the
client skips them, with the same arithmetic and so the same bits.

- gradient all-reduce: flatten, "average" over one rank (x 1.0), copy back, every step (~5% of a
  tiny-preset step, profiled): off (``engine.enable_backward_allreduce``);
- gradient clipping: DeepSpeed's ``clip_grad_norm_`` all-reduces the squared norm and then the norm
  over one-rank groups, ~0.7 ms of CPU a step (3.6% of a tiny step, profiled): the client clips with
  :func:`clip_like_deepspeed` instead and DeepSpeed's own clipping is set to 0.
ZeRO-1/2 and bf16 keep DeepSpeed's path: their reduce hooks also move gradients into partitions.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def alone(zero_stage: int, bf16: bool, group) -> bool:
    return zero_stage == 0 and not bf16 and dist.get_world_size(group) == 1


def clip_like_deepspeed(parameters, max_norm: float) -> None:
    """DeepSpeed 0.19's ``runtime.utils.clip_grad_norm_`` (L2) on one rank: the same tensor operations
    in the same order, over the same parameters (the engine module's, in order, those with gradients),
    without its two all-reduces (a sum of one value) and ``x 1.0 / 1`` (exact)."""
    params = [p for p in parameters if p.grad is not None]
    norms = [p.grad.data.detach().float().norm(2.0) for p in params]
    total = torch.stack(norms).pow(2.0).sum().float().pow(1. / 2.0)
    clip_coef = torch.tensor([float(max_norm)], device=total.device) / (total + 1e-6)
    clip_coef = torch.min(torch.tensor([1.0], device=clip_coef.device), clip_coef)
    for p in params:
        p.grad.data.mul_(clip_coef)
