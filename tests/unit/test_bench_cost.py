"""The FLOPs and bytes a client step is measured against (perf/cost.py)."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from perf.cost import decoder_layer, projector_cost, step_cost
from harness.engine.client import CaptionModel
from harness.data.collate import plain_batch
from harness.model.build import build_bundle, llava15_bundle, vision_features

pytestmark = pytest.mark.unit


def test_one_llama_layer_by_hand():
    """d=8, 2 heads of 4, MLP 16, 10 tokens, batch 2, fp32. Weights: q,k,v,o 4 x 64 + gate/up/down
    3 x 128 = 640. Forward 2 x 10 x 640 + 4 x 100 x 8 = 12,800 + 3,200 = 16,000 FLOPs; backward adds
    12,800 + 6,400. Bytes forward: weights 640 x 4 / 2 = 1,280 and per token q,k,v,o (16 each) + gate,
    up (24 each) + down (24) = 136 elements, x 10 x 4 = 5,440: 6,720, doubled with the backward."""
    c = decoder_layer(8, 2, 2, 4, 16, 10, 3, elt=4, batch=2, backward=True)
    assert c.flops == 16_000 + 19_200
    assert c.nbytes == 2 * 6_720
    assert decoder_layer(8, 2, 2, 4, 16, 10, 3, elt=4, batch=2, backward=False).flops == 16_000


def test_projector_by_hand():
    """1 -> 2 -> 3, 5 visual tokens: forward 2 x 5 x (2 + 6) = 80; backward linear_1 weight grads 20,
    linear_2 weight + input grads 120: 220 FLOPs."""
    assert projector_cost(1, 2, 3, 5, batch=1).flops == 220


def counted(bundle, batch: int = 3):
    """torch's own FLOP counter over one CaptionModel forward + backward (eager attention: the counter
    does not see the CPU's fused attention kernel), and over the vision tower's forward."""
    bundle.model.set_attn_implementation("eager")
    caps = ["a small red square", "a large blue square on the left", "x"][:batch]
    inputs = plain_batch(caps, bundle.tokenizer, bundle.image_token_id, bundle.num_image_tokens, 64)
    px = torch.zeros(batch, 3, bundle.image_size, bundle.image_size)
    with FlopCounterMode(display=False) as vision:
        feats = vision_features(bundle.model, px)
    with FlopCounterMode(display=False) as train:
        loss, _, _ = CaptionModel(bundle)(inputs["input_ids"], inputs["attention_mask"], inputs["labels"], feats)
        loss.backward()
    return inputs["input_ids"].shape[1], train.get_total_flops() / batch, vision.get_total_flops() / batch


@pytest.mark.parametrize("preset", ["tiny", "mini"])
def test_estimate_equals_torchs_flop_counter(preset):
    bundle = build_bundle(preset)
    tokens, train, vision = counted(bundle)
    est = step_cost(bundle.model.config, tokens, 3, vision=False)
    assert est.flops == train
    assert step_cost(bundle.model.config, tokens, 3, vision=True).flops - est.flops == vision


def test_estimate_equals_torchs_flop_counter_at_the_papers_shapes():
    """LLaVA-1.5-7B on the meta device (nothing computed), 600 tokens. By hand per layer: linears
    4 x 4096^2 + 3 x 4096 x 11008 = 202.4M weights, 2 x 600 x 202.4M = 242.9 G forward and again
    backward; attention 4 x 600^2 x 4096 = 5.9 G forward, 11.8 G backward: 503.5 G x 32 = 16.11 T.
    lm_head 4 x 600 x 4096 x 32000 = 0.315 T; projector 24.2 G forward + 43.5 G backward: 16.49 TFLOP."""
    with torch.device("meta"):
        bundle = llava15_bundle("random:clip", "random:vicuna")
    bundle.model.requires_grad_(False)
    bundle.model.model.multi_modal_projector.requires_grad_(True)
    bundle.model.set_attn_implementation("eager")
    ids = torch.full((2, 600), 5, device="meta")
    with FlopCounterMode(display=False) as counter:
        feats = torch.zeros(2, 576, 1024, device="meta")
        emb = torch.cat([bundle.model.get_input_embeddings()(ids[:, :1]), projector_of(bundle)(feats),
                         bundle.model.get_input_embeddings()(ids[:, 577:])], 1)
        bundle.model(inputs_embeds=emb, labels=ids).loss.backward()
    est = step_cost(bundle.model.config, 600, 2, vision=False)
    assert est.flops == counter.get_total_flops() / 2
    assert est.flops == pytest.approx(16.49e12, rel=1e-3)


def projector_of(bundle):
    return bundle.model.model.multi_modal_projector
