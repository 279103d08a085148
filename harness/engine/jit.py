"""Torch's JIT build folder for DeepSpeed's CPU communication op, made safe to share a machine.

Torch keys ``TORCH_EXTENSIONS_DIR`` by the Python version only, so two virtual environments (two clones of the
project) rebuild the op in turn, each recording its own absolute paths, and a build killed midway leaves its
``lock`` file behind, on which every later start waits forever (seen: a study's workers blocked until the
file was removed by hand). So a run uses one folder per interpreter prefix (unless the variable is set), and
a lock older than :data:`STALE_S` (a build takes about 30 s) is removed with a warning before anything builds.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)
STALE_S = 600.0


def prepare_torch_extensions() -> Path:
    """Set ``TORCH_EXTENSIONS_DIR`` to this interpreter's own folder when unset; clear stale locks in it."""
    if "TORCH_EXTENSIONS_DIR" not in os.environ:
        prefix = hashlib.sha1(sys.prefix.encode()).hexdigest()[:10]
        os.environ["TORCH_EXTENSIONS_DIR"] = str(Path.home() / ".cache" / "torch_extensions" / f"fedma-{prefix}")
    root = Path(os.environ["TORCH_EXTENSIONS_DIR"])
    clear_stale_locks(root)
    return root


def clear_stale_locks(root: Path, max_age_s: float = STALE_S) -> list:
    """Remove build locks under ``root`` older than ``max_age_s``; returns the removed paths."""
    removed = []
    if not root.is_dir():
        return removed
    now = time.time()
    for lock in root.rglob("lock"):                    # ROOT/<op>/lock (torch's layout)
        try:
            if now - lock.stat().st_mtime > max_age_s:
                lock.unlink()
                removed.append(lock)
                log.warning("removed a stale torch build lock (a build killed midway): %s", lock)
        except FileNotFoundError:
            pass
    return removed
