"""What a cached result was made from, by content rather than by where it lay.

An embedding (and everything built on it) depends on the encoder's weights and the source shards' bytes,
not on the absolute path a checkout or cache happened to have: two clones of the project, a moved
checkout and a read-only install must share one cache. So the identities recorded and compared are

- a model: ``sha256:<hex>`` over its directory's files (relative name and bytes) for a local directory;
  ``hub:<id>@<commit>`` for a hub id found in the local HF cache (``hub:<id>`` when it is not there);
- a shard: its file name, size and the hash of its first 64 KiB for a local file (the tar header and
  first records: cheap at CC12M scale, where full hashes would read terabytes); the URL for a remote one.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

HEAD_BYTES = 1 << 16


def file_digest(path: Path, limit: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if limit is not None:
            h.update(f.read(limit))
        else:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def directory_digest(root) -> str:
    """sha256 over the sorted (relative path, file sha256) pairs of every non-hidden file under ``root``."""
    root = Path(root)
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not any(part.startswith(".") for part in Path(rel).parts):
            h.update(f"{rel}\0{file_digest(p)}\n".encode())
    return h.hexdigest()


def model_identity(model: str) -> str:
    path = Path(model).expanduser()
    if path.is_dir():
        return f"sha256:{directory_digest(path)}"
    try:
        from huggingface_hub import snapshot_download
        snapshot = Path(snapshot_download(model, local_files_only=True))
        return f"hub:{model}@{snapshot.name}"
    except Exception:   # not a hub id in the local cache: the id is all we know
        return f"hub:{model}"


def shard_identity(url: str) -> dict:
    path = Path(url)
    if path.is_file():
        return {"name": path.name, "bytes": path.stat().st_size, "head": file_digest(path, HEAD_BYTES)[:16]}
    return {"url": url}


def describe_shard(ident: dict) -> str:
    return ident.get("url") or f"{ident['name']} ({ident['bytes']} bytes)"
