"""What the mini checkpoints do, measured by function rather than by bytes.

Byte equality across machines is not a property the build has (float sums run in another order on
another CPU; measured in ``results/bench/rebuild_spread.md``), so a checkpoint rebuilt from its
recipe is checked against the shipped one by what it does, within tolerances measured across CPU kernels:
- the CLIP: image-to-caption top-1 retrieval among 512 fresh world pairs;
- the LM: through a projector trained plainly for 300 steps on captions (:func:`train_projector`, the
  client's CaptionModel, AdamW 3e-3, batch 16, world samples from their own seed stream), the held-out
  caption loss with each sample's own image, and the first-answer-token accuracy on the mini benchmarks'
  questions (lmms-eval's prompts) with the sample's own image and with another's.
The tests use :func:`train_projector` too, wherever they ask whether the mini LM reads the image.
"""
import io
import random
from pathlib import Path

import torch
from PIL import Image

HELDOUT = 480


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
    from harness.engine.client import CaptionModel
    from harness.data.collate import plain_batch
    from harness.model.build import get_projector, projector, vision_features
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


def clip_scores(clip_dir: Path) -> dict:
    from transformers import CLIPModel

    from harness.mini.encoder import clip_tokenizer, retrieval_accuracy
    model = CLIPModel.from_pretrained(clip_dir).eval()
    with torch.no_grad():
        return {"clip_retrieval": retrieval_accuracy(model, clip_tokenizer(), n=512, seed=7)}


def lm_scores(llava_dir: Path) -> dict:
    from harness.data.collate import plain_batch
    from harness.mini import lmtext
    from harness.mini.models import mini_bundle
    torch.manual_seed(0)
    bundle = mini_bundle(llm_path=str(llava_dir))
    train_projector(bundle, steps=300, n=2400)
    recs, px = world_samples(bundle, HELDOUT, "function-heldout")
    tok = bundle.tokenizer
    batch = plain_batch([r[2] for r in recs], tok, bundle.image_token_id, bundle.num_image_tokens, 32)
    batch.pop("caption_mask")
    rows = lmtext.question_rows(tok, [r[3] for r in recs], random.Random(7),
                                [["<image>"] * bundle.num_image_tokens] * len(recs))
    questions = lmtext.pack(tok, rows)
    first = torch.tensor([next(j for j, y in enumerate(labels) if y != -100) for _, labels in rows])
    answer = questions["labels"][torch.arange(len(rows)), first]
    out = {}
    with torch.no_grad():
        out["caption_loss"] = float(bundle.model(**batch, pixel_values=px).loss)
        for name, images in (("answer_accuracy", px), ("answer_accuracy_other_image", px.roll(1, dims=0))):
            logits = bundle.model(input_ids=questions["input_ids"], attention_mask=questions["attention_mask"],
                                  pixel_values=images).logits
            out[name] = float((logits[torch.arange(len(rows)), first - 1].argmax(-1) == answer).float().mean())
    return out
