"""The mini world's cache ($FEDMA_CACHE or ~/.cache/fedma, then mini/<world version>): every artifact is
built once, by one process at a time (a file lock per artifact), into a temporary sibling that is renamed
into place, so a crash never leaves a half-built artifact that a later run would trust. Directory names
carry a hash of what built them (the recipe, and the content hash of a checkpoint they were made with),
never an absolute path, so a changed recipe never reuses a stale build, and two checkouts, a moved
checkout or a read-only install share one cache.

The two pretrained checkpoints (the tiny CLIP and the tiny LLaVA, 5.6 MB) also ship in the package
(``harness/mini/shipped/<name>``, the same names): :func:`shipped_or_cached` uses them, so a first demo
skips about 8 minutes of pretraining and every machine runs the same weights. ``FEDMA_MINI_REBUILD=1``
builds them from their recipes instead (a test checks that this reproduces the shipped bytes).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

from harness.mini import world


def cache_root() -> Path:
    return Path(os.environ.get("FEDMA_CACHE", Path.home() / ".cache" / "fedma")) / "mini" / world.VERSION


def recipe_tag(*recipes: dict) -> str:
    """A short stable hash of the recipes (JSON with sorted keys)."""
    text = json.dumps(recipes, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def content_tag(directory: Path) -> str:
    """A short hash of a checkpoint directory's files (names and bytes): what anything built from it is
    keyed by, so that no cache entry depends on the absolute path of a checkout."""
    from harness.data.identity import directory_digest
    return directory_digest(directory)[:10]


SHIPPED = Path(__file__).parent / "shipped"


def rebuilding() -> bool:
    return os.environ.get("FEDMA_MINI_REBUILD", "") not in ("", "0")


def shipped_or_cached(name: str, build: Callable[[Path], object]) -> Path:
    """The shipped checkpoint ``name`` (a recipe-hashed name) if the package has it and no rebuild is
    asked for; else ``cache_root() / name``, built on first use."""
    return available(name) or cached(cache_root() / name, build)


def available(name: str):
    """Where checkpoint ``name`` already is (shipped, unless a rebuild is asked for, or cached); else None."""
    shipped = SHIPPED / name
    if shipped.is_dir() and not rebuilding():
        return shipped
    return cache_root() / name if (cache_root() / name).is_dir() else None


def cached(path: Path, build: Callable[[Path], object]) -> Path:
    """``path``, made by ``build(tmp_dir)`` on first use; later calls return at once."""
    path = Path(path)
    if path.is_dir():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_dir():
            tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            build(tmp)
            os.replace(tmp, path)
    return path
