"""The Fed-MA-mini world's fixed word list, above both the world (captions) and its benchmark questions
(:mod:`harness.mini.qa`, which draws on the world's attributes), so neither imports the other's back."""
from __future__ import annotations

from typing import List

from harness.mini import qa, world


def vocabulary() -> List[str]:
    """Specials, then every word any caption or benchmark question can use, sorted."""
    return list(world.SPECIALS) + sorted(world.caption_words() | set(qa.words()))
