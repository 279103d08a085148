"""Grounding: the mini LM's second pretraining phase, on images through a throwaway projector.

Why: after text-only pretraining (:mod:`harness.mini.lmtext`) the LM answers every question from the
right slot *words*, yet a projector trained on captions alone left it at about chance on the questions
(800 steps, caption loss 0.20, first answer token on 400 held-out images: POPE 0.51, MME 0.55, MMBench
0.33, SEED 0.32, MMVP 0.51). The projector finds inputs the LM's copy circuit reads (the caption) but its
question circuit does not; nothing in caption loss asks for word embeddings. (A 7B LM brings reading
skills that a 2-layer model trained for minutes on one vocabulary lacks.)

So, like LLaVA's stage 2 in miniature, the LM is trained on world images with a projector, on the same
caption and question rows, with the image tokens in the slots. The projector is then put back to its
random initialization and is not saved: a federation's projector starts from random weights and must
learn the mapping from captions alone. Measured the same way, a fresh projector trained on captions
then reaches POPE 0.68, MME 0.68, MMBench 0.66, SEED 0.65, MMVP 0.71 (caption loss 0.07), and a random
one stays at chance. Images come from their own seed stream, not the federation's nor the benchmarks'.
"""
from __future__ import annotations

import io
import random
from typing import List, Tuple

import torch
from PIL import Image

from harness.mini import lmtext, world

# images per step: ``batch`` caption rows and ``qa_batch`` question rows (the first ``batch`` images serve both)
GROUND = {"steps": 1200, "batch": 16, "qa_batch": 32, "yes_no_share": 0.5, "lr": 1e-3, "projector_lr": 3e-3,
          "seed": 0}


def grounding_images(rng: random.Random, n: int, bundle) -> Tuple[List[dict], torch.Tensor]:
    """``n`` fresh world images (any domain) as metadata and normalized pixels."""
    from harness.data.reader import pixels
    metas, images = [], []
    for meta in lmtext.random_metas(rng, n):
        jpg = world.render(rng, meta["domain"], {a: meta[a] for a in world.ATTRIBUTES})
        metas.append(meta)
        images.append(Image.open(io.BytesIO(jpg)).convert("RGB"))
    return metas, pixels(images, bundle.image_size, bundle.image_mean, bundle.image_std)


def step_loss(model, tok, metas: List[dict], px: torch.Tensor, rng: random.Random, sizes: dict) -> torch.Tensor:
    """Caption rows on the first ``batch`` images plus question rows on all, one mean each."""
    image = ["<image>"] * lmtext.NUM_IMAGE_TOKENS
    n = sizes["batch"]
    captions = lmtext.caption_rows(tok, metas[:n], rng, [image] * n)
    questions = lmtext.question_rows(tok, metas, rng, [image] * len(metas), sizes["yes_no_share"])
    return (model(**lmtext.pack(tok, captions), pixel_values=px[:n]).loss
            + model(**lmtext.pack(tok, questions), pixel_values=px).loss)


def ground_lm(bundle, sizes: dict = GROUND) -> None:
    """Train ``bundle.model``'s LM (and, in passing, its projector) on images; the vision tower stays
    frozen and the projector ends where it began."""
    from harness.model.build import get_projector, projector, set_projector
    model, tok = bundle.model, bundle.tokenizer
    start = get_projector(model)
    model.requires_grad_(False)
    lm_params = [*model.model.language_model.parameters(), *model.lm_head.parameters()]
    groups = [{"params": lm_params, "lr": sizes["lr"]},
              {"params": list(projector(model).parameters()), "lr": sizes["projector_lr"]}]
    for group in groups:
        for p in group["params"]:
            p.requires_grad_(True)
    opt = torch.optim.AdamW(groups)
    steps = sizes["steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 30) * (1 - s / steps))
    rng = random.Random(f"mini-ground-{sizes['seed']}")
    model.train()
    for _ in range(steps):
        metas, px = grounding_images(rng, sizes["qa_batch"], bundle)
        loss = step_loss(model, tok, metas, px, rng, sizes)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    model.requires_grad_(False)
    set_projector(model, start)
