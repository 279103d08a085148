"""Where the pipeline keeps its intermediate results, and the embedding store it reads in chunks.

    WORK/embed/manifest.json        {"model", "shards": [url, ...], "dim_image", "dim_text"}
    WORK/embed/parts/NNNNN.img.npy  float16 (n, d_x), L2-normalized image embeddings of source shard N
    WORK/embed/parts/NNNNN.txt.npy  float16 (n, d_y), L2-normalized caption embeddings
    WORK/embed/parts/NNNNN.json     {"url", "keys": [...], "skipped": {reason: count}}  (written last)
    WORK/<metric>/...               cluster, cap and split results for one scenario (ii, tt, it, xm)

A part is one source shard, so every step is resumable per shard. Global row i is the i-th kept record
in shard order; the store memory-maps the parts and never holds all embeddings at once.
"""
from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from harness.core.errors import DataError

METRICS = ("ii", "tt", "it", "xm")
URL_PREFIXES = ("http://", "https://", "s3://", "gs://", "pipe:", "file:")


def list_shards(spec: str) -> list[str]:
    """Source shards from a directory (its *.tar), a glob, a brace pattern, a .txt list, or URLs."""
    spec = str(spec)
    if spec.startswith(URL_PREFIXES):
        import braceexpand
        return list(braceexpand.braceexpand(spec))
    path = Path(spec)
    if path.is_dir():
        shards = sorted(str(p) for p in path.glob("*.tar"))
    elif path.is_file() and path.suffix == ".txt":
        shards = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    elif path.is_file():
        shards = [spec]
    else:
        import braceexpand
        shards = sorted(s for pat in braceexpand.braceexpand(spec) for s in glob.glob(pat))
    if not shards:
        raise DataError(f"shards={spec!r}: no webdataset shards found (expected a directory of .tar files, "
                        f"a glob or brace pattern such as 'cc12m/{{00000..01242}}.tar', or a .txt list)")
    return shards


def embed_dir(work) -> Path:
    return Path(work) / "embed"


def part_path(work, index: int, suffix: str) -> Path:
    return embed_dir(work) / "parts" / f"{index:05d}.{suffix}"


def metric_dir(work, metric: str) -> Path:
    return Path(work) / metric


class EmbeddingStore:
    """Read-only view of the embed step's output: chunks of (x, y) as float16 memory maps."""

    def __init__(self, work):
        manifest = embed_dir(work) / "manifest.json"
        if not manifest.is_file():
            raise DataError(f"{manifest}: missing (run 'fedma data embed --work {work}' first)")
        self.meta = json.loads(manifest.read_text())
        if not self.meta.get("complete"):
            raise DataError(f"{manifest}: the embed step has not finished (run it again to resume)")
        self.work = Path(work)
        self.sizes = [len(self.part_info(i)["keys"]) for i in range(len(self.meta["shards"]))]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def part_info(self, index: int) -> dict:
        return json.loads(part_path(self.work, index, "json").read_text())

    def part(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.load(part_path(self.work, index, "img.npy"), mmap_mode="r")
        y = np.load(part_path(self.work, index, "txt.npy"), mmap_mode="r")
        return x, y

    def chunks(self, rows: int = 65536) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(start row, x chunk, y chunk) in row order, each chunk at most ``rows`` long (float16 views)."""
        for i, n in enumerate(self.sizes):
            if n == 0:
                continue
            x, y = self.part(i)
            for a in range(0, n, rows):
                yield int(self.offsets[i]) + a, x[a:a + rows], y[a:a + rows]

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of the given global rows (sorted or not) as float32 arrays."""
        rows = np.asarray(rows, dtype=np.int64)
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        dx, dy = self.meta["dim_image"], self.meta["dim_text"]
        x, y = np.empty((len(rows), dx), np.float32), np.empty((len(rows), dy), np.float32)
        for p in np.unique(part):
            sel = np.flatnonzero(part == p)
            px, py = self.part(int(p))
            local = rows[sel] - self.offsets[p]
            x[sel], y[sel] = px[local], py[local]
        return x, y
