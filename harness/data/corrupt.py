"""Clients whose data is worse: a copy of a prepared root in which some clients' captions are mismatched.

For the chosen clients, in every round, a seeded ``rate`` share of the samples get another sample's
caption from the same round (a random derangement among the picked ones, so no picked caption stays
with its image): the pairs are fluent text about the wrong image, the way noisy web alt-text is. The
other clients and the held-out rows are the source's own (relative links), so a corrupted
federation differs from its clean source only where the corruption was asked for. What a study uses to
give reliability weighting (RWF, whose weights fall with a client's image-text alignment error e_k)
something to act on. ``manifest.json`` records the corrupted clients, the rate and the counts.
"""
from __future__ import annotations

import json
import os
import random
import tarfile
from pathlib import Path
from typing import Dict, List, Sequence

from harness.data.layout import read_index, read_manifest, round_dir, write_json, write_shards
from harness.core.errors import DataError


def corrupt_root(source, out, clients: Sequence[int], rate: float, seed: int = 0) -> Path:
    """``out``: ``source`` with ``clients``' captions mismatched at ``rate`` (idempotent; a finished ``out``
    with the same parameters is returned as is)."""
    source, out = Path(source), Path(out)
    manifest = read_manifest(source)
    params = {"clients": sorted(int(c) for c in clients), "rate": float(rate), "seed": int(seed)}
    bad = [c for c in params["clients"] if not 0 <= c < manifest["clients"]]
    if bad or not 0.0 < rate <= 1.0:
        raise DataError(f"corrupt: clients {bad} not in 0..{manifest['clients'] - 1}, or rate={rate} not in (0, 1]")
    done = out / "manifest.json"
    if done.is_file() and json.loads(done.read_text()).get("corrupt", {}).get("params") == params:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.name != "manifest.json" and not entry.name.startswith(".") and \
                entry.name not in {f"client_{c:02d}" for c in params["clients"]}:
            _link(entry, out / entry.name)
    counts = {}
    for c in params["clients"]:
        counts[str(c)] = [_corrupt_round(round_dir(source, c, t), round_dir(out, c, t), rate, f"{seed}-{c}-{t}")
                          for t in range(1, manifest["rounds"] + 1)]
    write_json(done, {**manifest, "corrupt": {"params": params, "mismatched_per_round": counts}})
    return out


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        return
    os.symlink(os.path.relpath(target, link.parent), link)     # relative: a moved cache keeps its links


def _corrupt_round(src: Path, dst: Path, rate: float, stream: str) -> int:
    """Copy one client-round with a ``rate`` share of its captions deranged; returns how many changed."""
    records = _read_records(src)
    rng = random.Random(f"corrupt-{stream}")
    picked = sorted(rng.sample(range(len(records)), round(rate * len(records)))) if records else []
    captions = [records[i][2] for i in picked]
    if len(picked) > 1:
        order = list(range(len(picked)))
        rng.shuffle(order)
        shifted = order[1:] + order[:1]          # a cycle through a random order: no fixed point
        moved = dict(zip(order, shifted))
        for j, i in enumerate(picked):
            key, image, _, meta = records[i]
            records[i] = (key, image, captions[moved[j]], {**meta, "caption_from": records[picked[moved[j]]][0]})
    write_shards(dst, records)
    return len(picked) if len(picked) > 1 else 0


def _read_records(directory: Path) -> List[tuple]:
    """(key, jpg bytes, caption, metadata) of every record of a shard directory, in shard order."""
    out: Dict[str, dict] = {}
    for shard in sorted(read_index(directory)["shards"]):
        with tarfile.open(directory / shard) as tar:
            for member in tar.getmembers():
                key, _, ext = member.name.rpartition(".")
                out.setdefault(key, {})[ext] = tar.extractfile(member).read()
    return [(k, v["jpg"], v.get("txt", b"").decode(), json.loads(v.get("json", b"{}"))) for k, v in out.items()]
