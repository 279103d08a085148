"""Local training — the no-communication reference of the paper's tables.

There is no server rule: each client keeps its own projector across rounds (the round engine holds
one projector per client) and the reported score is the mean over clients. ``aggregate`` therefore
returns the global state unchanged, which keeps the interface uniform.
"""
from __future__ import annotations

import dataclasses

from harness.aggregator import Aggregator


@dataclasses.dataclass
class Local(Aggregator):
    name = "local"

    def _aggregate(self, global_state, updates):
        return {k: v.clone() for k, v in global_state.items()}
