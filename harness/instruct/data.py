"""Stage 2's data: LLaVA instruction records split among the clients, in the round engine's layout.

Input: LLaVA's format, one JSON list per source dataset (``{"id", "image", "conversations": [{"from":
"human", "value": "<image>\\n..."}, {"from": "gpt", "value": ...}, ...]}``) with images under a folder,
or webdataset shards of ``KEY.jpg`` + ``KEY.json`` (the same record). The paper's split (Appendix B):
each source is shuffled (seeded) and dealt into K non-overlapping, equal parts (sizes differ by at most
one), so every client holds 1/K of GQA and 1/K of OCRVQA; each client's part is then cut into T rounds
(one pass). Written as ``ROOT/client_KK/round_TT`` shards whose records carry the turns in ``KEY.json``,
plus ``ROOT/manifest.json`` (``format: conversation``) and ``ROOT/client_stats.json`` (Table 5).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List

from harness.data.layout import round_dir, write_json, write_shards
from harness.data.reader import SkipReport, _conversations, iter_shards
from harness.core.errors import DataError


@dataclass(frozen=True)
class Item:
    key: str
    image: bytes        # the encoded image file
    conversations: list
    source: str         # the dataset it came from (gqa, ocrvqa, ...)


def read_llava_json(path, images, source: str) -> List[Item]:
    """LLaVA's JSON list; a record whose image is missing or whose turns are malformed is a DataError."""
    path, images = Path(path), Path(images)
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable LLaVA JSON list ({e})") from None
    items = []
    for i, row in enumerate(rows):
        turns = _conversations(json.dumps(row).encode()) if isinstance(row, dict) else None
        where = f"{path} record {i} (id {row.get('id') if isinstance(row, dict) else '?'})"
        if turns is None:
            raise DataError(f"{where}: 'conversations' must alternate human/gpt turns with string values")
        image = images / str(row.get("image", ""))
        if not image.is_file():
            raise DataError(f"{where}: image {image} not found (images are read relative to --images {images})")
        items.append(Item(f"{source}_{_safe(row.get('id', i))}", image.read_bytes(), turns, source))
    return items


def read_llava_shards(paths: List[str], source: str) -> List[Item]:
    report = SkipReport()
    items = []
    for rec in iter_shards(paths, report):
        turns = _conversations(rec.get("json"))
        if turns and "jpg" in rec:
            items.append(Item(f"{source}_{_safe(rec['__key__'])}", rec["jpg"], turns, source))
    if not items:
        raise DataError(f"{paths}: no KEY.jpg + KEY.json instruction records")
    return items


def _safe(key) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(key))


def even_split(items: List[Item], clients: int, seed: int) -> List[List[Item]]:
    """Seeded shuffle, then K contiguous parts of sizes n//K or n//K + 1 (the first n % K get one more)."""
    order = list(items)
    random.Random(f"instruct-split-{seed}-{items[0].source if items else ''}").shuffle(order)
    n, parts, start = len(order), [], 0
    for k in range(clients):
        size = n // clients + (1 if k < n % clients else 0)
        parts.append(order[start:start + size])
        start += size
    return parts


def split_sources(sources: Dict[str, List[Item]], clients: int, seed: int) -> List[List[Item]]:
    """Every source split evenly; client k's data is its part of each source, shuffled together."""
    per_client: List[List[Item]] = [[] for _ in range(clients)]
    for name in sorted(sources):
        for k, part in enumerate(even_split(sources[name], clients, seed)):
            per_client[k] += part
    for k, items in enumerate(per_client):
        random.Random(f"instruct-mix-{seed}-{k}").shuffle(items)
    return per_client


def rounds_of(items: List[Item], rounds: int) -> List[List[Item]]:
    """One pass in T rounds: contiguous parts as equal as possible."""
    n = len(items)
    bounds = [round(t * n / rounds) for t in range(rounds + 1)]
    return [items[bounds[t]:bounds[t + 1]] for t in range(rounds)]


def write_instruct(root, sources: Dict[str, List[Item]], clients: int, rounds: int, seed: int = 0,
                   per_shard: int = 1000) -> Path:
    root = Path(root)
    per_client = split_sources(sources, clients, seed)
    for k, items in enumerate(per_client):
        if len(items) < rounds:
            raise DataError(f"client {k} would hold {len(items)} records for {rounds} rounds; give more data "
                            f"or fewer --rounds/--clients")
        for t, part in enumerate(rounds_of(items, rounds), start=1):
            write_shards(round_dir(root, k, t), _records(part), per_shard)
    stats = {name: [sum(i.source == name for i in items) for items in per_client] for name in sorted(sources)}
    write_json(root / "client_stats.json", {"clients": clients, "counts": stats})
    write_json(root / "manifest.json", {"clients": clients, "rounds": rounds, "scenario": "instruct",
                                        "format": "conversation", "sources": sorted(sources), "seed": seed})
    return root


def _records(items: Iterable[Item]):
    for it in items:
        yield it.key, it.image, "", {"conversations": it.conversations, "source": it.source}


def read_sources(specs: List[str], images=None) -> Dict[str, List[Item]]:
    """``NAME=PATH`` per source: a LLaVA JSON list (images under ``images``) or webdataset shards (a
    ``.tar`` file, a brace pattern or a folder of them); one DataError line for a malformed spec."""
    from harness.data.store import list_shards
    sources = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise DataError(f"--source {spec!r}: expected NAME=PATH (e.g. gqa=llava_gqa.json or ocrvqa=shards/)")
        if path.endswith(".json"):
            if images is None:
                raise DataError(f"--source {spec}: a JSON list needs --images DIR (where its image paths point)")
            sources[name] = read_llava_json(path, images, name)
        else:
            sources[name] = read_llava_shards(list_shards(path), name)
    return sources


def prepare_instruct(specs: List[str], out, clients: int, rounds: int, seed: int = 0, images=None) -> dict:
    """``fedma data instruct``: read, split evenly, write; returns Table 5's counts."""
    root = write_instruct(out, read_sources(specs, images), clients, rounds, seed)
    return json.loads((Path(root) / "client_stats.json").read_text())
