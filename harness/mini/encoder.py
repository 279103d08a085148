"""The mini world's dual encoder: a tiny CLIP pretrained contrastively on world image-caption pairs.

It plays two roles of the real setup at once: SigLIP2 in the data pipeline (``embed`` loads it through
the same HF ``AutoModel`` path, from a ``save_pretrained`` directory) and CLIP ViT-L in LLaVA (its
vision tower initialises the mini LLaVA's frozen vision tower). Both towers train with the symmetric
InfoNCE loss of CLIP (Radford et al. 2021) over in-batch negatives, with a learned temperature.

The text tower reads the world's words through its own word-level tokenizer whose end-of-text token is
not id 2: CLIP's text model treats ``eos_token_id == 2`` as the legacy "pool at the largest id" rule.
Deterministic for a seed (single-threaded math order aside); about half a minute on 2 CPU cores.
"""
from __future__ import annotations

import io
import random
from pathlib import Path

import torch

from harness.mini import vocab as word_list, world

CLIP_RECIPE = {"threads": 1, "steps": 400, "batch": 64, "lr": 2e-3, "seed": 0, "pool": 4096, "dim": 64}
CLIP_SPECIALS = ("<pad>", "<unk>", "<bos>", "<eot>")


def clip_tokenizer():
    """Word-level tokenizer for the text tower: every caption gets a trailing <eot> (id 3)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    words = [w for w in word_list.vocabulary() if w not in world.SPECIALS]
    vocab = {w: i for i, w in enumerate(CLIP_SPECIALS + tuple(words))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")
    core.post_processor = processors.TemplateProcessing(single="$A <eot>", special_tokens=[("<eot>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<bos>", eos_token="<eot>")


def clip_config(vision_config, tok):
    """A CLIPConfig whose vision tower is exactly the mini LLaVA's (``vision_config``)."""
    from transformers import CLIPConfig
    text = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=32, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    return CLIPConfig(text_config=text, vision_config=vision_config.to_dict(), projection_dim=CLIP_RECIPE["dim"])


def image_processor():
    from transformers import CLIPImageProcessor
    s = world.IMAGE_SIZE
    return CLIPImageProcessor(size={"shortest_edge": s}, crop_size={"height": s, "width": s})


def training_pool(n: int, seed: int):
    """(pixel tensor [n, 3, 32, 32] normalised as CLIP expects, captions): all domains mixed."""
    from PIL import Image
    rng = random.Random(f"mini-clip-{seed}")
    images, captions = [], []
    for i in range(n):
        _, jpeg, cap, _ = world.record(rng, world.DOMAINS[i % len(world.DOMAINS)], f"clip_{i}")
        images.append(Image.open(io.BytesIO(jpeg)).convert("RGB"))
        captions.append(cap)
    return image_processor()(images=images, return_tensors="pt")["pixel_values"], captions


def contrastive_step(model, pixels, ids, mask) -> torch.Tensor:
    return model(input_ids=ids, attention_mask=mask, pixel_values=pixels, return_loss=True).loss


def pretrain_clip(vision_config, recipe: dict = CLIP_RECIPE):
    """The trained ``CLIPModel`` (eval mode) and its tokenizer."""
    from transformers import CLIPModel
    tok = clip_tokenizer()
    torch.manual_seed(recipe["seed"])
    model = CLIPModel(clip_config(vision_config, tok))
    pixels, captions = training_pool(recipe["pool"], recipe["seed"])
    enc = tok(captions, padding=True, return_tensors="pt")
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=0.0)
    steps = recipe["steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 40) * (1 - s / steps))
    gen = torch.Generator().manual_seed(recipe["seed"])
    model.train()
    for _ in range(steps):
        rows = torch.randperm(len(captions), generator=gen)[:recipe["batch"]]
        loss = contrastive_step(model, pixels[rows], enc["input_ids"][rows], enc["attention_mask"][rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    return model, tok


def save_clip(model, tok, path) -> Path:
    path = Path(path)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    image_processor().save_pretrained(path)
    return path


def retrieval_accuracy(model, tok, n: int = 256, seed: int = 1) -> float:
    """Image-to-caption top-1 accuracy among ``n`` fresh pairs (a pretraining sanity figure); a caption
    identical to the right one counts as right (attribute combinations repeat)."""
    pixels, captions = training_pool(n, seed + 1000)
    with torch.no_grad():
        enc = tok(captions, padding=True, return_tensors="pt")
        x = model.get_image_features(pixel_values=pixels)
        y = model.get_text_features(**enc)
        x, y = (t if torch.is_tensor(t) else t.pooler_output for t in (x, y))
    sims = torch.nn.functional.normalize(x, dim=-1) @ torch.nn.functional.normalize(y, dim=-1).T
    best = sims.argmax(1).tolist()
    return sum(captions[j] == captions[i] for i, j in enumerate(best)) / n
