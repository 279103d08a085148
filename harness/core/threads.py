"""Process-wide settings changed for one block and restored after it (also on error)."""
from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch


@contextlib.contextmanager
def scoped(get: Callable[[], Any], set_: Callable[[Any], Any], value):
    """``set_(value)`` for the block, then ``set_(get())`` as it was before."""
    before = get()
    set_(value)
    try:
        yield
    finally:
        set_(before)


def torch_threads(n: int):
    return scoped(torch.get_num_threads, torch.set_num_threads, n)
