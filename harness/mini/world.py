"""The Fed-MA-mini world: 32 px image-caption pairs in five domains over one shared vocabulary.

Every sample has five attributes (size, colour, shape, vertical and horizontal place) drawn from a
domain-specific distribution, and a domain (clothing, text-rich, sketches, indoor scenes, crowds) with its
own background, texture, palette bias and caption template. Everything is a function of the seed: the same
seed writes the same bytes (fixed tar metadata, deterministic JPEG encoding).

Written straight into the round engine's layout (:mod:`harness.data.layout`) with the domain as client:
ROOT/client_KK/round_TT shards, ROOT/heldout, ROOT/manifest.json. Each record's JSON carries its ground
truth (domain and attributes), so answer keys can be checked against the generator.
"""
from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Dict, List

from PIL import Image, ImageDraw

from harness.data.layout import heldout_dir, round_dir, write_json, write_shards

VERSION = "v1"
IMAGE_SIZE = 32
COLORS = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 230), "yellow": (235, 215, 40),
          "purple": (140, 50, 170), "orange": (245, 140, 20), "pink": (245, 120, 190), "cyan": (40, 210, 220)}
SHAPES = ("square", "circle", "triangle", "cross")
SIZES = {"small": 9, "large": 15}
VPOS = {"top": 2, "bottom": 15}
HPOS = {"left": 2, "right": 15}
ATTRIBUTES = ("size", "color", "shape", "vpos", "hpos")
DOMAINS = ("clothing", "text", "sketch", "indoor", "crowd")
# the domain's word in the caption (what the LM reads from the image slots beside the attributes)
DOMAIN_WORD = {"clothing": "shirt", "text": "page", "sketch": "drawing", "indoor": "room", "crowd": "crowd"}
TEMPLATES = {
    "clothing": "a photo of a {size} {color} {shape} printed on a shirt at the {vpos} {hpos}",
    "text": "a page of text with a {size} {color} {shape} logo at the {vpos} {hpos}",
    "sketch": "a drawing of a {size} {color} {shape} outline at the {vpos} {hpos}",
    "indoor": "a room with a {size} {color} {shape} on the wall at the {vpos} {hpos}",
    "crowd": "a crowd of people near a {size} {color} {shape} sign at the {vpos} {hpos}",
}
# palette bias: each domain prefers three colours (chance of a preferred colour 0.7)
PALETTE = {"clothing": ("red", "blue", "pink"), "text": ("blue", "green", "purple"),
           "sketch": ("orange", "cyan", "red"), "indoor": ("yellow", "orange", "green"),
           "crowd": ("purple", "pink", "cyan")}
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>", "<image>")


def caption_words() -> set:
    """Every word a caption can use (the benchmark questions add theirs: :func:`harness.mini.vocab.vocabulary`)."""
    words = set()
    for template in TEMPLATES.values():
        words.update(w for w in template.split() if not w.startswith("{"))
    words.update(COLORS, SHAPES, SIZES, VPOS, HPOS, DOMAIN_WORD.values())
    return words


def draw_attributes(rng: random.Random, domain: str) -> Dict[str, str]:
    color = rng.choice(PALETTE[domain]) if rng.random() < 0.7 else rng.choice(sorted(COLORS))
    return {"size": rng.choice(sorted(SIZES)), "color": color, "shape": rng.choice(SHAPES),
            "vpos": rng.choice(sorted(VPOS)), "hpos": rng.choice(sorted(HPOS))}


def caption(domain: str, attrs: Dict[str, str]) -> str:
    return TEMPLATES[domain].format(**attrs)


def _background(rng: random.Random, domain: str) -> Image.Image:
    s = IMAGE_SIZE
    img = Image.new("RGB", (s, s))
    d = ImageDraw.Draw(img)
    if domain == "clothing":       # fabric: soft tone with diagonal weave
        base = rng.choice([(200, 190, 170), (170, 175, 190), (190, 170, 170)])
        d.rectangle((0, 0, s, s), fill=base)
        for k in range(-s, s, 4):
            d.line((k, 0, k + s, s), fill=tuple(c - 25 for c in base))
    elif domain == "text":         # white page with dark lines of "text"
        d.rectangle((0, 0, s, s), fill=(245, 245, 240))
        for y in range(1, s, 4):
            x = 1
            while x < s - 2:
                w = rng.randint(2, 6)
                d.line((x, y, min(s - 1, x + w), y), fill=(30, 30, 30))
                x += w + 2
    elif domain == "sketch":       # paper with faint pencil strokes
        d.rectangle((0, 0, s, s), fill=(235, 235, 235))
        for _ in range(4):
            d.line((rng.randint(0, s), rng.randint(0, s), rng.randint(0, s), rng.randint(0, s)), fill=(170, 170, 170))
    elif domain == "indoor":       # wall above, wooden floor below
        d.rectangle((0, 0, s, s), fill=(150, 120, 90))
        d.rectangle((0, 0, s, 22), fill=rng.choice([(210, 200, 180), (190, 200, 210)]))
        for x in range(0, s, 6):
            d.line((x, 23, x, s), fill=(110, 85, 60))
    else:                          # crowd: dark, many small heads
        d.rectangle((0, 0, s, s), fill=(60, 60, 70))
        for _ in range(40):
            x, y = rng.randint(0, s - 3), rng.randint(0, s - 3)
            tone = rng.randint(110, 200)
            d.ellipse((x, y, x + 2, y + 2), fill=(tone, int(tone * 0.8), int(tone * 0.6)))
    return img


def render(rng: random.Random, domain: str, attrs: Dict[str, str]) -> bytes:
    img = _background(rng, domain)
    d = ImageDraw.Draw(img)
    n = SIZES[attrs["size"]]
    x, y = HPOS[attrs["hpos"]] + rng.randint(0, 1), VPOS[attrs["vpos"]] + rng.randint(0, 1)
    box = (x, y, x + n - 1, y + n - 1)
    color = COLORS[attrs["color"]]
    fill, outline = (None, color) if domain == "sketch" else (color, (0, 0, 0) if domain == "text" else color)
    shape = attrs["shape"]
    if shape == "square":
        d.rectangle(box, fill=fill, outline=outline)
    elif shape == "circle":
        d.ellipse(box, fill=fill, outline=outline)
    elif shape == "triangle":
        d.polygon([(x + n // 2, y), (x, y + n - 1), (x + n - 1, y + n - 1)], fill=fill, outline=outline)
    else:
        t = max(2, n // 3)
        c = n // 2 - t // 2
        for rect in ((x + c, y, x + c + t - 1, y + n - 1), (x, y + c, x + n - 1, y + c + t - 1)):
            d.rectangle(rect, fill=fill if fill else color)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def record(rng: random.Random, domain: str, key: str):
    attrs = draw_attributes(rng, domain)
    meta = {"domain": domain, **attrs}
    return key, render(rng, domain, attrs), caption(domain, attrs), meta


def slot_words(meta: dict) -> List[str]:
    """The words the LM pretraining puts in the image slots: the five attributes and the domain word."""
    return [meta[a] for a in ATTRIBUTES] + [DOMAIN_WORD[meta["domain"]]]


def write_world(root, rounds: int = 10, per_round: int = 256, heldout: int = 250, seed: int = 0,
                per_shard: int = 1000) -> Path:
    """The federation: client k is domain k, ``per_round`` samples per round, plus a mixed held-out set."""
    root = Path(root)
    for k, domain in enumerate(DOMAINS):
        for t in range(1, rounds + 1):
            rng = random.Random(f"mini-{seed}-{k}-{t}")
            write_shards(round_dir(root, k, t), (record(rng, domain, f"{domain}_r{t:02d}_{i:05d}")
                                                 for i in range(per_round)), per_shard)
    rng = random.Random(f"mini-{seed}-heldout")
    write_shards(heldout_dir(root), (record(rng, DOMAINS[i % len(DOMAINS)], f"heldout_{i:05d}")
                                     for i in range(heldout)), per_shard)
    write_json(root / "manifest.json", {"clients": len(DOMAINS), "rounds": rounds, "scenario": "mini",
                                        "domains": list(DOMAINS), "per_round": per_round, "heldout": heldout,
                                        "seed": seed, "version": VERSION, "synthetic": True})
    return root


# unequal domain shares in the unlabeled pool, as in real web data (clusters of different sizes)
POOL_SHARES = {"clothing": 0.28, "text": 0.24, "sketch": 0.2, "indoor": 0.16, "crowd": 0.12}


def pool_records(n: int, seed: int):
    """An unlabeled mix of the five domains (img2dataset records; the JSON keeps the ground truth)."""
    rng = random.Random(f"mini-pool-{seed}")
    domains, weights = zip(*POOL_SHARES.items())
    for i in range(n):
        yield record(rng, rng.choices(domains, weights)[0], f"pool_{i:06d}")


def write_pool(root, n: int = 16000, seed: int = 0, per_shard: int = 2000) -> Path:
    """The raw pool the data pipeline clusters into clients (``ROOT/shard-*.tar``)."""
    write_shards(Path(root), pool_records(n, seed), per_shard)
    return Path(root)


def validation_records(n: int, seed: int):
    """Pairs from the pool's mixture on a stream of their own: rows no client, held-out or benchmark set holds."""
    rng = random.Random(f"mini-validation-{seed}")
    domains, weights = zip(*POOL_SHARES.items())
    for i in range(n):
        yield record(rng, rng.choices(domains, weights)[0], f"val_{i:06d}")
