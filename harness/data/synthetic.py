"""A small synthetic federation for tests: each client draws from its own colour domain.

Images are 32x32 (``image_size``) JPEGs of a coloured square on a background, captions name colour, size and place.
Deterministic from the seed (the same bytes every time). ``corrupt`` plants broken records (a bad
JPEG and an empty caption per client-round) to exercise the skip-and-count path.
"""
from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image

from harness.data.layout import heldout_dir, round_dir, write_json, write_shards

COLORS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40),
          "purple": (140, 50, 170), "orange": (240, 140, 20), "white": (240, 240, 240), "black": (15, 15, 15)}
SIZES = {"small": 8, "large": 18}
PLACES = {"left": 2, "right": 14}


def synthetic_record(rng: random.Random, client: int, key: str, size: int = 32):
    names = list(COLORS)
    color = names[(client + rng.choice((0, 0, 1))) % len(names)]   # mostly the client's own colour
    shape_size, place = rng.choice(list(SIZES)), rng.choice(list(PLACES))
    img = Image.new("RGB", (size, size), (128, 128, 128))
    s, x, y = (v * size // 32 for v in (SIZES[shape_size], PLACES[place], 8))   # the 32-pixel layout, scaled
    img.paste(COLORS[color], (x, y, min(size, x + s), min(size, y + s)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    caption = f"a {shape_size} {color} square on the {place}"
    return key, buf.getvalue(), caption, {"client": client, "color": color}


def write_synthetic_federation(root, clients: int = 5, rounds: int = 3, per_round: int = 16,
                               heldout: int = 16, seed: int = 0, corrupt: bool = False,
                               per_shard: int = 8, image_size: int = 32) -> Path:
    root = Path(root)
    for k in range(clients):
        for t in range(1, rounds + 1):
            rng = random.Random(f"{seed}-{k}-{t}")
            recs = [synthetic_record(rng, k, f"c{k}r{t}s{i:04d}", image_size) for i in range(per_round)]
            if corrupt:
                recs[1] = (recs[1][0], b"not a jpeg", recs[1][2], recs[1][3])
                recs[2] = (recs[2][0], recs[2][1], "  ", recs[2][3])
            write_shards(round_dir(root, k, t), recs, per_shard)
    rng = random.Random(f"{seed}-heldout")
    write_shards(heldout_dir(root), [synthetic_record(rng, i % clients, f"h{i:04d}", image_size)
                                     for i in range(heldout)], per_shard)
    write_json(root / "manifest.json", {"clients": clients, "rounds": rounds, "scenario": "synthetic",
                                        "seed": seed})
    return root
