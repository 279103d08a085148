"""Fed-MA-mini's stage 2: GQA-style and OCRVQA-style instruction data and benchmark sets from the mini
world, in the real tasks' schemas (the paper's Appendix B at laptop scale).

    set      images                          questions (open, one word; answers from the generator)
    gqa      every domain but the text one   attributes (color, shape, size) and relations (where the
                                             object is vertically / horizontally): MMVP's stems
    ocrvqa   the text-rich domain ("page")   what the page shows: its mark's glyph (shape) and ink
                                             (color): SEED's stems

Why these words: the mini LM knows only the world's vocabulary (:func:`harness.mini.vocab.vocabulary`), so every
question is one it met in pretraining, asked open instead of with options. A 32-pixel page cannot hold
legible words, so the OCRVQA stand-in "reads" the one mark a page carries; its numbers say whether the
pipeline works, not how well a model reads. Answers are a function of the generator's metadata alone
(the ``truth`` column), so an oracle that reads ``truth`` scores 100 (tests/eval/test_instruct_eval.py).

Training records come from their own seed stream (``mini-instruct-{seed}-...``), benchmark images from
``mini-bench-{seed}-...``: the two never share an image, nor with stage 1's world.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import List, Tuple

from harness.mini import qa, world

POST = qa.POST_SHORT
GQA_DOMAINS = tuple(d for d in world.DOMAINS if d != "text")
SOURCES = {"gqa": (GQA_DOMAINS, {a: qa.MMVP_STEMS[a] for a in ("color", "shape", "size", "vpos", "hpos")}),
           "ocrvqa": (("text",), {a: qa.SEED_STEMS[a] for a in ("shape", "color")})}
RECIPE = {"version": 1, "per_source": 4000, "rounds": 2, "clients": 5}


def question(source: str, i: int, rng: random.Random) -> Tuple[bytes, dict, str, str, str]:
    """Image ``i`` of a source (its domains in turn), one of its stems at random, and the true answer."""
    domains, stems = SOURCES[source]
    domain = domains[i % len(domains)]
    meta = {"domain": domain, **world.draw_attributes(rng, domain)}
    jpg = world.render(rng, domain, {a: meta[a] for a in world.ATTRIBUTES})
    attribute = rng.choice(sorted(stems))
    return jpg, meta, attribute, stems[attribute], meta[attribute]


def training_items(source: str, n: int, seed: int = 0) -> list:
    from harness.instruct.data import Item
    rng = random.Random(f"mini-instruct-{seed}-{source}")
    items = []
    for i in range(n):
        jpg, _, _, text, answer = question(source, i, rng)
        turns = [{"from": "human", "value": f"<image>\n{text}{POST}"}, {"from": "gpt", "value": answer}]
        items.append(Item(f"{source}_{i:05d}", jpg, turns, source))
    return items


def bench_rows(source: str, rng: random.Random, n: int) -> List[dict]:
    rows = []
    for i in range(n):
        jpg, meta, attribute, text, answer = question(source, i, rng)
        rows.append({"image": {"bytes": jpg, "path": None}, "truth": json.dumps(meta, sort_keys=True),
                     "question_id": f"{source}{i:04d}", "imageId": f"{source}{i:04d}", "question": text,
                     "answer": answer, "fullAnswer": answer, "attribute": attribute})
    return rows


def gqa_rows(rng: random.Random, recipe: dict) -> List[dict]:
    return bench_rows("gqa", rng, recipe["open_questions"])


def ocrvqa_rows(rng: random.Random, recipe: dict) -> List[dict]:
    return bench_rows("ocrvqa", rng, recipe["open_questions"])


def recipe_id() -> str:
    return hashlib.sha1(json.dumps([RECIPE, world.VERSION], sort_keys=True).encode()).hexdigest()[:8]


def write_instruct_world(root, seed: int = 0) -> Path:
    """The five clients' stage-2 data: each source split evenly (Appendix B), one pass in ``rounds``."""
    from harness.instruct.data import write_instruct
    sources = {s: training_items(s, RECIPE["per_source"], seed) for s in SOURCES}
    return write_instruct(root, sources, RECIPE["clients"], RECIPE["rounds"], seed, per_shard=200)


def ensure_instruct_world(seed: int = 0) -> Path:
    """The stage-2 data in the cache (``instruct-s{seed}-{recipe}``), written on first use."""
    from harness.mini.cache import cache_root, cached
    return cached(cache_root() / f"instruct-s{seed}-{recipe_id()}", lambda tmp: write_instruct_world(tmp, seed))
