"""LLaVA-1.5-7B's architecture (random weights: nothing can be downloaded on the device machine),
bf16, DeepSpeed ZeRO-2 on one GPU: two rounds of five clients train and move the projector."""
import pytest
import torch

from harness.data.synthetic import write_synthetic_federation
from tests.distributed.conftest import fedma_run, projector

pytestmark = pytest.mark.gpu


def test_llava15_7b_bf16_zero2_federation(tmp_path):
    data = write_synthetic_federation(tmp_path / "d", clients=5, rounds=2, per_round=8, heldout=8)
    res = fedma_run(1, tmp_path / "r", f"data.root={data}", "method=fedcmp", "rounds=2", "model.preset=llava-1.5-7b",
                    "model.vision_path=random:clip", "model.llm_path=random:vicuna", "model.dtype=bfloat16",
                    "client.zero_stage=2", "client.batch_size=4")
    assert res.returncode == 0, res.stderr[-3000:]
    final = projector(tmp_path / "r")
    assert final["linear_1.weight"].shape == (4096, 1024)
    assert all(torch.isfinite(v.float()).all() for v in final.values())
