"""Simulated device heterogeneity on top of the real engine (past the paper, Appendix F's limits).

- **Downtime**: a sampled client is up in round t with probability ``federation.availability``, drawn
  from ``random.Random(f"up-{seed}-{t}-{client}")``: seeded, so a resumed run sees the same outages.
  A down client does not train, receives and sends nothing, and is recorded (``federation/down``).
- **Stragglers**: client k's speed factor is ``exp(speed_spread * z_k)`` with
  ``z_k = random.Random(f"speed-{seed}-{k}").gauss(0, 1)`` (log-normal; 0: every client at 1). Its
  simulated round time is the measured training time x its factor (recorded as ``train/seconds``);
  nothing sleeps.
- **Deadline**: with ``federation.deadline_s``, a client whose simulated time is past it is dropped
  for the round, as the ``client_timeout_s`` timeout drops a really late one. Because the decision
  reads measured time, deadline drops are not bit-reproducible (outages are).
"""
from __future__ import annotations

import math
import random
from typing import Optional


def is_up(availability: float, seed: int, round_: int, client: int) -> bool:
    return availability >= 1.0 or random.Random(f"up-{seed}-{round_}-{client}").random() < availability


def speed_factor(spread: float, seed: int, client: int) -> float:
    return 1.0 if spread == 0 else math.exp(spread * random.Random(f"speed-{seed}-{client}").gauss(0.0, 1.0))


def late(simulated_s: float, deadline_s: Optional[float]) -> Optional[str]:
    """The drop reason when the simulated round time is past the deadline, else None."""
    if deadline_s is None or simulated_s <= deadline_s:
        return None
    return f"simulated round time {simulated_s:.3g} s past federation.deadline_s={deadline_s:g}"
