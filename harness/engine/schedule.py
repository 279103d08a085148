"""The local learning-rate schedule: linear warmup (ceil(ratio * total steps)), then ``cosine`` decay to
zero (HF Trainer's ``get_cosine_schedule_with_warmup``, which LLaVA uses), ``linear`` decay to zero
(``get_linear_schedule_with_warmup``) or ``constant``.

``schedule_scope=federation`` runs one schedule over a client's whole stream (its position carries
across rounds); ``round`` restarts it every round.
"""
from __future__ import annotations

import math
from typing import Dict, List


SCHEDULERS = ("cosine", "linear", "constant")


def lr_at(step: int, total: int, base_lr: float, warmup_ratio: float, kind: str = "cosine") -> float:
    warmup = math.ceil(warmup_ratio * total)
    if step < warmup:
        return base_lr * step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "constant":
        return base_lr
    if kind == "linear":
        return base_lr * max(0.0, 1.0 - progress)
    return base_lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def cosine_lr(step: int, total: int, base_lr: float, warmup_ratio: float) -> float:
    return lr_at(step, total, base_lr, warmup_ratio, "cosine")


def schedule_window(steps_per_round: Dict[int, int], round_: int, scope: str) -> tuple:
    """(position of the round's first step, total steps of the schedule) for 1-based ``round_``."""
    if scope == "round":
        return 0, steps_per_round[round_]
    before = sum(n for t, n in steps_per_round.items() if t < round_)
    return before, sum(steps_per_round.values())


def round_lrs(steps_per_round: Dict[int, int], round_: int, scope: str, base_lr: float,
              warmup_ratio: float, kind: str = "cosine") -> List[float]:
    start, total = schedule_window(steps_per_round, round_, scope)
    return [lr_at(start + i, total, base_lr, warmup_ratio, kind) for i in range(steps_per_round[round_])]
