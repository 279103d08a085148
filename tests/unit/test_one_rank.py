"""A one-rank client group clips with DeepSpeed's arithmetic, without DeepSpeed's collectives."""
import os

import pytest
import torch

from harness.engine.one_rank import clip_like_deepspeed

pytestmark = pytest.mark.unit


def params_with_grads(seed: int, scale: float):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for shape in ((64, 32), (64,), (16, 64), (16,)):
        p = torch.nn.Parameter(torch.zeros(shape))
        p.grad = torch.randn(shape, generator=gen) * scale
        out.append(p)
    frozen = torch.nn.Parameter(torch.zeros(3), requires_grad=False)   # no gradient: skipped
    return out[:2] + [frozen] + out[2:]


def test_by_hand():
    """Gradients (3) and (4): norm 5, max_norm 1, coefficient 1 / (5 + 1e-6): (0.6, 0.8)."""
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
    clip_like_deepspeed([a, b], 1.0)
    assert (a.grad.item(), b.grad.item()) == pytest.approx((0.6, 0.8), rel=1e-6)


@pytest.fixture(scope="module")
def world_of_one():
    """A world of one in this process, torn down after: its store's port and the RANK/MASTER_PORT it
    sets must not outlive the module (a later subprocess of this pytest process would inherit them and
    try to bind the port this process still holds)."""
    import torch.distributed as dist

    from harness.engine.dist import init_world
    keys = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    saved = {k: os.environ.pop(k) for k in keys if k in os.environ}
    init_world(1, 60)
    yield
    dist.destroy_process_group()
    for key in keys:
        os.environ.pop(key, None)
    os.environ.update(saved)


@pytest.mark.parametrize("scale", [1.0, 1e-4])        # clipped, and left alone (coefficient 1)
def test_bit_for_bit_what_deepspeed_computes_on_one_rank(scale, world_of_one):
    from deepspeed.runtime.utils import clip_grad_norm_

    ours, theirs = params_with_grads(0, scale), params_with_grads(0, scale)
    clip_like_deepspeed(ours, 1.0)
    clip_grad_norm_(theirs, 1.0)
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours, theirs) if a.grad is not None)
    assert ours[0].grad.norm() < (1.0 if scale == 1.0 else 1e-2)
