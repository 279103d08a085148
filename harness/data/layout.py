"""The prepared-data layout the round engine reads (written by ``fedma data split`` or a generator).

    ROOT/manifest.json                       {"clients": K, "rounds": T, "scenario": ..., ...}
    ROOT/client_00/round_01/index.json       {"count": N, "shards": {"shard-00000.tar": n, ...}}
    ROOT/client_00/round_01/shard-00000.tar  img2dataset records KEY.jpg, KEY.txt, KEY.json
Clients are numbered from 0, rounds from 1 (as in the paper's figures).
    ROOT/heldout/...                         the same, for held-out evaluation (optional)
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Iterable, Tuple

from harness.core.errors import DataError

Record = Tuple[str, bytes, str, dict]   # key, image bytes, caption, metadata


def round_dir(root, client: int, round_: int) -> Path:
    return Path(root) / f"client_{client:02d}" / f"round_{round_:02d}"


def heldout_dir(root) -> Path:
    return Path(root) / "heldout"


def read_index(directory) -> dict:
    path = Path(directory) / "index.json"
    if not path.is_file():
        raise DataError(f"{path}: missing (expected the prepared layout client_KK/round_TT/index.json)")
    return json.loads(path.read_text())


def read_manifest(root) -> dict:
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise DataError(f"data.root={str(root)!r}: no manifest.json (prepare it with 'fedma data prepare')")
    return json.loads(path.read_text())


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(payload), 0, 0o644   # fixed metadata: same bytes every time
    tar.addfile(info, io.BytesIO(payload))


def write_shards(directory, records: Iterable[Record], per_shard: int = 1000) -> dict:
    """Write records as tar shards plus index.json, atomically per file; returns the index."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    shards, batch = {}, []
    for rec in records:   # streamed: one shard's records in memory at a time
        batch.append(rec)
        if len(batch) == per_shard:
            shards.update(_write_shard(directory, len(shards), batch))
            batch = []
    if batch:
        shards.update(_write_shard(directory, len(shards), batch))
    index = {"count": sum(shards.values()), "shards": shards}
    write_json(directory / "index.json", index)
    return index


def _write_shard(directory: Path, number: int, batch: list) -> dict:
    name = f"shard-{number:05d}.tar"
    tmp = directory / f".{name}.tmp"
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, image, caption, meta in batch:
            _add(tar, f"{key}.jpg", image)
            _add(tar, f"{key}.txt", caption.encode())
            _add(tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode())
    os.replace(tmp, directory / name)
    return {name: len(batch)}


def write_json(path, obj) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)
