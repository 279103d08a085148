"""Fed-MA-mini: the world generator is deterministic and its captions are its ground truth; the mini
preset builds and its LM has learned the copy task it was pretrained on."""
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.mini import models, world

pytestmark = pytest.mark.unit


def tree_bytes(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def small_world(root, seed=0):
    return world.write_world(root, rounds=2, per_round=12, heldout=10, seed=seed, per_shard=5)


def read_records(directory: Path):
    out = {}
    for shard in sorted(directory.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar.getmembers():
                key, ext = m.name.rsplit(".", 1)
                out.setdefault(key, {})[ext] = tar.extractfile(m).read()
    return out


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path):
    a, b, c = (tree_bytes(small_world(tmp_path / n, seed=s)) for n, s in (("a", 0), ("b", 0), ("c", 1)))
    assert a == b
    assert set(a) == set(c) and a != c
    assert json.loads(a["manifest.json"])["clients"] == 5
    assert "client_04/round_02/index.json" in a and "heldout/index.json" in a


def test_captions_and_images_match_the_ground_truth(tmp_path):
    root = small_world(tmp_path)
    tok = models.word_tokenizer()
    checked = 0
    for k, domain in enumerate(world.DOMAINS):
        recs = read_records(root / f"client_{k:02d}" / "round_01")
        assert len(recs) == 12
        for key, rec in recs.items():
            meta = json.loads(rec["json"])
            assert meta["domain"] == domain                       # the client is the domain
            caption = rec["txt"].decode()
            assert caption == world.caption(domain, meta)
            words = caption.split()
            for attr in world.ATTRIBUTES:                          # every attribute word in the caption
                assert meta[attr] in words
            ids = tok(caption, add_special_tokens=False).input_ids
            assert len(ids) == len(words) and tok.unk_token_id not in ids
            img = Image.open(io.BytesIO(rec["jpg"])).convert("RGB")
            assert img.size == (32, 32)
            if meta["shape"] == "square" and domain != "sketch":    # filled square: its centre has its colour
                n = world.SIZES[meta["size"]]
                cx, cy = world.HPOS[meta["hpos"]] + n // 2, world.VPOS[meta["vpos"]] + n // 2
                got = img.getpixel((cx, cy))
                assert max(abs(g - w) for g, w in zip(got, world.COLORS[meta["color"]])) < 60, (key, got)
                checked += 1
    assert checked > 0


def test_domains_differ_visually(tmp_path):
    root = small_world(tmp_path)
    means = []
    for k in range(5):
        recs = read_records(root / f"client_{k:02d}" / "round_01")
        px = torch.stack([torch.tensor(np.asarray(Image.open(io.BytesIO(r["jpg"])).convert("RGB")).reshape(-1, 3),
                                       dtype=torch.float) for r in recs.values()])
        means.append(px.mean(dim=(0, 1)))
    dists = [float((means[i] - means[j]).norm()) for i in range(5) for j in range(i + 1, 5)]
    assert min(dists) > 10       # mean RGB of every pair of domains differs


def test_mini_bundle_builds_from_the_cached_checkpoint():
    from harness.model.build import build_bundle
    bundle = build_bundle("mini")                          # built on first use into the cache
    assert bundle.image_token_id < len(bundle.tokenizer) == bundle.model.config.text_config.vocab_size
    assert bundle.tokenizer.bos_token_id is not None and bundle.tokenizer.pad_token_id is not None
    assert bundle.num_image_tokens == 16
    assert (models.ensure_models() / "model.safetensors").is_file()


def test_grounding_trains_the_lm_only_and_resets_the_projector():
    """Grounding (harness.mini.ground) changes the LM and its head; the vision tower and the projector
    end bit-identical to where they began, so no trained projector ships inside the checkpoint."""
    from transformers import LlavaForConditionalGeneration
    from harness.mini import ground
    tok = models.word_tokenizer()
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(models.llava_config(tok))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ground.ground_lm(models.bundle_of(model, tok), {**ground.GROUND, "steps": 2, "batch": 2, "qa_batch": 4})
    changed = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert changed and all(k.startswith(("model.language_model.", "lm_head.")) for k in changed), changed
    assert {k for k in before if k.startswith("model.language_model.layers.0.")} <= changed
    assert not any(p.requires_grad for p in model.parameters())
