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


def test_llava15_7b_stage_two_lora_r128_two_rounds(tmp_path):
    """Stage 2 at the paper's shapes: LoRA r=128 on Vicuna-7B's seven projections of 32 layers (320M
    adapter parameters, README "Stage 2"), bf16, ZeRO-2, gradient checkpointing, from random init."""
    from harness.instruct.synthetic import write_synthetic_instruct
    from tests.distributed.conftest import torchrun
    data = write_synthetic_instruct(tmp_path / "d", clients=5, rounds=2, per_source=20)
    res = torchrun(1, "-m", "harness.cli", "run", "instruct-paper", f"data.root={data}", "init.projector=random",
                   "model.vision_path=random:clip", "model.llm_path=random:vicuna", "client.batch_size=4",
                   "federation.rounds=2", "eval.final_tasks=[]", "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr[-3000:]
    final = projector(tmp_path / "r")
    lora = [k for k in final if k.startswith("lora/")]
    assert len(lora) == 32 * 7 * 2
    assert sum(final[k].numel() for k in lora) == 32 * (4 * 2 * 128 * 4096 + 3 * 128 * (4096 + 11008))
    assert all(torch.isfinite(v.float()).all() for v in final.values())
