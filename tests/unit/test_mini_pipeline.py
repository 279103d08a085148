"""Fed-MA-mini through the real data pipeline: the contrastive tiny CLIP, the unlabeled pool, and the
four scenarios' partitions (clients are clusters, not domains)."""
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data.layout import read_manifest
from harness.mini import encoder, world

pytestmark = pytest.mark.unit
SMALL_POOL = {"n": 1500, "seed": 0}


def keys_and_meta(directory: Path) -> dict:
    out = {}
    for shard in sorted(directory.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".json"):
                    out[m.name[:-5]] = json.loads(tar.extractfile(m).read())
    return out


def test_clip_tokenizer_ends_every_caption_with_its_own_eot():
    """CLIP pools the text at eos_token_id, and treats id 2 as the legacy 'largest id' rule: ours is 3."""
    tok = encoder.clip_tokenizer()
    ids = tok(["a red circle", "a page of text"], padding=True).input_ids
    assert tok.eos_token_id == 3 and ids[0][:4] == [tok.convert_tokens_to_ids(w) for w in ("a", "red", "circle")] + [3]
    assert ids[1][-1] == 3 and ids[0][-1] == tok.pad_token_id == 0
    assert tok.unk_token_id not in sum(ids, [])


def test_text_features_pool_at_the_eot_not_at_the_padding():
    from transformers import CLIPModel, CLIPVisionConfig
    tok = encoder.clip_tokenizer()
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8)
    torch.manual_seed(0)
    model = CLIPModel(encoder.clip_config(vision, tok)).eval()
    short, long_ = "a red circle", "a red circle at the top left of a room"
    with torch.no_grad():
        alone = model.get_text_features(**tok([short], return_tensors="pt"))
        padded = model.get_text_features(**tok([short, long_], padding=True, return_tensors="pt"))
    alone, padded = (t if torch.is_tensor(t) else t.pooler_output for t in (alone, padded))
    assert torch.allclose(alone[0], padded[0], atol=1e-5)        # padding does not move the pooled feature
    assert not torch.allclose(padded[0], padded[1], atol=1e-3)


def test_the_cached_clip_retrieves_captions_far_above_chance():
    """Top-1 image-to-caption retrieval among 256 fresh pairs. Chance is the share of pairs whose
    caption equals a random other caption (repeats of attribute combinations), under 1%."""
    from transformers import CLIPModel
    from harness.mini.models import ensure_clip
    path = ensure_clip()
    model, tok = CLIPModel.from_pretrained(path).eval(), encoder.clip_tokenizer()
    _, captions = encoder.training_pool(256, 1001)
    counts = Counter(captions)
    chance = sum(counts[c] for c in captions) / len(captions) ** 2
    acc = encoder.retrieval_accuracy(model, tok, 256, seed=1)
    assert chance < 0.01 and acc > 0.3, (acc, chance)


def test_four_scenarios_partition_the_pool_differently_and_disjointly():
    from harness.mini.scenario import data_root, ensure_pool, ensure_scenario, partition_agreement
    root = ensure_scenario("all", per_round=20, rounds=3, heldout=40, pool=SMALL_POOL)   # cached: its own names
    work = root.parent.parent
    pool = keys_and_meta(ensure_pool(**SMALL_POOL))
    assert len(pool) == SMALL_POOL["n"]
    for metric in ("ii", "tt", "it", "xm"):
        data = data_root(work, metric)
        manifest = read_manifest(data)
        assert manifest["clients"] == 5 and manifest["rounds"] == 3
        seen = Counter()
        for k in range(5):
            for t in range(1, 4):
                got = keys_and_meta(data / f"client_{k:02d}" / f"round_{t:02d}")
                assert 0 < len(got) <= 20
                seen.update(got.keys())
                assert all(pool[key] == meta for key, meta in got.items())   # records travel unchanged
        held = keys_and_meta(data / "heldout")
        assert len(held) == 40 and not set(held) & set(seen)
        assert max(seen.values()) == 1                                       # each sample used once
    agreement = partition_agreement(work)
    assert len(agreement) == 6
    assert min(agreement.values()) < 0.9, agreement                          # not one partition four times


def test_pool_mixes_domains_in_unequal_shares(tmp_path):
    meta = keys_and_meta(world.write_pool(tmp_path / "pool", n=2000, seed=3, per_shard=500))
    shares = Counter(m["domain"] for m in meta.values())
    assert set(shares) == set(world.DOMAINS)
    for domain, share in world.POOL_SHARES.items():
        assert abs(shares[domain] / 2000 - share) < 0.04, (domain, shares)
    assert np.argmax([shares[d] for d in world.DOMAINS]) == 0


def test_same_seed_same_pool_bytes(tmp_path):
    a, b, c = (world.write_pool(tmp_path / n, n=300, seed=s, per_shard=100) for n, s in (("a", 0), ("b", 0), ("c", 1)))
    read = lambda root: {p.name: p.read_bytes() for p in sorted(root.iterdir())}
    assert read(a) == read(b) and read(a) != read(c)
