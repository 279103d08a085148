"""Reading one client's round subset: deterministic order, decoding, skip-and-count, rank batches.

Order is a function of (seed, client, round) only: shards in a seeded order, then a seeded buffer
shuffle. Every rank of a client group reads the same stream and takes its own slice of each global
batch, so each sample is consumed exactly once by the group; a rank whose slice of the last global
batch is empty gets an empty micro-batch (the trainer makes it a zero-weight step).
"""
from __future__ import annotations

import io
import json
import logging
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional

import numpy as np
import torch
from PIL import Image

from harness.data.layout import read_index

log = logging.getLogger(__name__)


@dataclass
class Sample:
    key: str
    image: Image.Image
    caption: str
    conversations: Optional[list] = None   # LLaVA's instruction turns [{"from": "human"|"gpt", "value": ...}]


@dataclass
class SkipReport:
    """Records skipped while reading, by reason (never fatal)."""
    counts: Counter = field(default_factory=Counter)

    def skip(self, reason: str, where: str) -> None:
        self.counts[reason] += 1
        log.debug("skipped record %s: %s", where, reason)   # counted; summarized per round


def decode(record: dict, report: SkipReport, conversation: bool = False) -> Optional[Sample]:
    """A sample, or None (counted in ``report``); ``conversation``: an instruction record is required."""
    key = record.get("__key__", "?")
    caption = (record.get("txt") or b"").decode("utf-8", errors="replace").strip()
    conversations = _conversations(record.get("json"))
    if conversation and not conversations:
        report.skip("no_conversation", key)
        return None
    if not caption and not conversations:
        report.skip("empty_caption", key)
        return None
    try:
        image = Image.open(io.BytesIO(record["jpg"]))
        image = image.convert("RGB")
    except Exception:   # any undecodable image (PIL raises many kinds) is skipped
        report.skip("corrupt_image", key)
        return None
    return Sample(key, image, caption, conversations)


def _conversations(raw: Optional[bytes]) -> Optional[list]:
    """An instruction record's turns (human, gpt, ...), or None for a caption record or malformed turns."""
    if not raw or b'"conversations"' not in raw:
        return None
    try:
        turns = json.loads(raw)["conversations"]
    except (ValueError, KeyError, TypeError):
        return None
    ok = isinstance(turns, list) and len(turns) >= 2 and all(
        isinstance(t, dict) and t.get("from") == ("human" if i % 2 == 0 else "gpt") and isinstance(t.get("value"), str)
        for i, t in enumerate(turns))
    return turns if ok else None


def iter_shards(paths: List[str], report: SkipReport) -> Iterator[dict]:
    import webdataset as wds

    def on_error(exn):
        report.skip("unreadable_record", repr(exn)[:120])
        return True
    def every_shard(urls):   # the ranks of a group split samples themselves (rank_batches)
        yield from urls
    yield from wds.WebDataset(paths, shardshuffle=False, handler=on_error, empty_check=False,
                              nodesplitter=every_shard, workersplitter=every_shard)


def ordered_samples(directory, seed: int, client: int, round_: int, report: SkipReport,
                    buffer: int = 1000, conversation: bool = False) -> Iterator[Sample]:
    rng = random.Random(f"order-{seed}-{client}-{round_}")
    shards = sorted(read_index(directory)["shards"])
    rng.shuffle(shards)
    pool: list = []
    for record in iter_shards([str(Path(directory) / s) for s in shards], report):
        if "jpg" not in record:
            report.skip("missing_image", record.get("__key__", "?"))
            continue
        pool.append(record)
        if len(pool) >= buffer:
            yield from _pop_decoded(pool, rng, report, conversation)
    while pool:
        yield from _pop_decoded(pool, rng, report, conversation)


def _pop_decoded(pool: list, rng: random.Random, report: SkipReport, conversation: bool) -> Iterator[Sample]:
    i = rng.randrange(len(pool))
    pool[i], pool[-1] = pool[-1], pool[i]
    sample = decode(pool.pop(), report, conversation)
    if sample is not None:
        yield sample


def num_steps(count: int, micro_batch: int, group_size: int) -> int:
    """Optimizer micro-steps for ``count`` samples: ceil(count / (micro_batch * group_size))."""
    return math.ceil(count / (micro_batch * group_size))


def rank_batches(samples: Iterator[Sample], steps: int, micro_batch: int, group_size: int,
                 rank: int) -> Iterator[List[Sample]]:
    """Exactly ``steps`` micro-batches for ``rank``: its slice of each global batch (maybe empty)."""
    it = iter(samples)
    for _ in range(steps):
        global_batch = [s for _, s in zip(range(micro_batch * group_size), it)]
        yield global_batch[rank * micro_batch:(rank + 1) * micro_batch]


def pixels(images: List[Image.Image], size: int, mean, std) -> torch.Tensor:
    """CLIP preprocessing: shorter side to ``size`` (bicubic), centre crop, scale to [0, 1], normalize."""
    out = []
    for img in images:
        scale = size / min(img.size)
        w, h = max(size, round(img.width * scale)), max(size, round(img.height * scale))
        img = img.resize((w, h), Image.BICUBIC)
        left, top = (w - size) // 2, (h - size) // 2
        arr = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
        out.append((arr - np.asarray(mean, np.float32)) / np.asarray(std, np.float32))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()
