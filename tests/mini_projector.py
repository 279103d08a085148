"""A projector trained plainly on Fed-MA-mini captions, for tests that ask whether the mini LM reads the
image: the client's CaptionModel, AdamW 3e-3, batch 16, on world samples from their own seed stream."""
import io
import random

import torch
from PIL import Image


def world_samples(bundle, n: int, seed: str):
    """``n`` world records (key, jpeg, caption, meta; domains in turn) and their pixels."""
    from harness.data.reader import pixels
    from harness.mini import world
    rng = random.Random(seed)
    recs = [world.record(rng, world.DOMAINS[i % 5], str(i)) for i in range(n)]
    px = pixels([Image.open(io.BytesIO(r[1])).convert("RGB") for r in recs], bundle.image_size, bundle.image_mean,
                bundle.image_std)
    return recs, px


def train_projector(bundle, steps: int = 2000, n: int = 4000) -> dict:
    """Returns the trained projector's state; the bundle's model keeps it."""
    from harness.client import CaptionModel
    from harness.data.collate import plain_batch
    from harness.model import get_projector, projector, vision_features
    recs, px = world_samples(bundle, n, "proj-train")
    feats = torch.cat([vision_features(bundle.model, px[i:i + 256]) for i in range(0, n, 256)])
    model, params = CaptionModel(bundle), list(projector(bundle.model).parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=3e-3)
    for step in range(steps):
        idx = random.Random(step).sample(range(n), 16)
        batch = plain_batch([recs[i][2] for i in idx], bundle.tokenizer, bundle.image_token_id,
                            bundle.num_image_tokens, 32)
        loss, _, _ = model(batch["input_ids"], batch["attention_mask"], batch["labels"], feats[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p in params:
        p.requires_grad_(False)
    return get_projector(bundle.model)
