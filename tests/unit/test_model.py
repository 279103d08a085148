"""Model presets, projector I/O, the plain template and the LR schedule (no processes started)."""
import math

import pytest
import torch

from harness.data.collate import IGNORE, plain_batch
from harness.model.build import (PROJECTOR_KEYS, byte_tokenizer, get_projector, init_projector, llava15_bundle,
                           set_projector, tiny_bundle)
from harness.engine.schedule import cosine_lr, round_lrs

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tiny():
    return tiny_bundle()


def test_projector_round_trip_and_seeded_init(tiny):
    a = init_projector(tiny.model, seed=3)
    assert tuple(a) == PROJECTOR_KEYS
    b = init_projector(tiny.model, seed=4)
    assert not torch.equal(a["linear_1.weight"], b["linear_1.weight"])
    set_projector(tiny.model, a)
    assert all(torch.equal(v, get_projector(tiny.model)[k]) for k, v in a.items())
    assert torch.equal(init_projector(tiny.model, seed=3)["linear_2.weight"], a["linear_2.weight"])


def test_llava15_architecture_has_the_papers_projector():
    """Built on the meta device: CLIP-L/336 (1024) -> 4096 -> 4096, 576 visual tokens, nothing allocated."""
    with torch.device("meta"):
        bundle = llava15_bundle("random:clip", "random:vicuna")
    shapes = {k: tuple(v.shape) for k, v in bundle.model.model.multi_modal_projector.state_dict().items()}
    assert shapes == {"linear_1.weight": (4096, 1024), "linear_1.bias": (4096,),
                      "linear_2.weight": (4096, 4096), "linear_2.bias": (4096,)}
    assert bundle.num_image_tokens == 576 and bundle.image_size == 336
    assert bundle.model.config.vision_feature_layer == -2


def test_plain_template_masks_everything_but_the_caption():
    tok = byte_tokenizer()
    batch = plain_batch(["ab", "abcd"], tok, image_token_id=4, num_image_tokens=3, max_caption_tokens=3)
    # row 0: <s> <img>x3 a b \\n <pad>; row 1: <s> <img>x3 a b c \\n (caption cut at 3 tokens)
    a, b, c, nl = (tok.convert_tokens_to_ids(x) for x in ("a", "b", "c", "Ċ"))
    assert batch["input_ids"].tolist() == [[1, 4, 4, 4, a, b, nl, 0], [1, 4, 4, 4, a, b, c, nl]]
    assert batch["labels"].tolist() == [[IGNORE] * 4 + [a, b, nl, IGNORE], [IGNORE] * 4 + [a, b, c, nl]]
    assert batch["caption_mask"].sum(1).tolist() == [2, 3]
    assert batch["attention_mask"].sum(1).tolist() == [7, 8]


def test_cosine_schedule_by_hand():
    """total 100, warmup ceil(0.03 * 100) = 3: lr(1) = 1/3, lr(3) = 1, lr(3 + 97/2) = 1/2, lr(100) = 0."""
    assert cosine_lr(0, 100, 1.0, 0.03) == 0.0
    assert cosine_lr(1, 100, 1.0, 0.03) == pytest.approx(1 / 3)
    assert cosine_lr(3, 100, 1.0, 0.03) == pytest.approx(1.0)
    assert cosine_lr(3 + 48.5, 100, 1.0, 0.03) == pytest.approx(0.5)
    assert cosine_lr(100, 100, 1.0, 0.03) == pytest.approx(0.0, abs=1e-12)


def test_schedule_scope_federation_continues_across_rounds():
    plan = {1: 4, 2: 4, 3: 2}
    whole = [cosine_lr(i, 10, 1.0, 0.03) for i in range(10)]
    assert round_lrs(plan, 1, "federation", 1.0, 0.03) + round_lrs(plan, 2, "federation", 1.0, 0.03) \
        + round_lrs(plan, 3, "federation", 1.0, 0.03) == whole
    assert round_lrs(plan, 2, "round", 1.0, 0.03) == [cosine_lr(i, 4, 1.0, 0.03) for i in range(4)]
    assert math.isclose(round_lrs(plan, 3, "round", 1.0, 0.03)[0], 0.0)
