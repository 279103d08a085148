"""The mini world's cache ($FEDMA_CACHE or ~/.cache/fedma, then mini/<world version>): every artifact is
built once, by one process at a time (a file lock per artifact), into a temporary sibling that is renamed
into place, so a crash never leaves a half-built artifact that a later run would trust. Directory names
carry a hash of the recipe that built them, so a changed recipe never reuses a stale build.
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
