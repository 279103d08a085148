"""Local training — the no-communication reference of the paper's tables.

There is no server rule: each client keeps its own projector across rounds and the reported score is
the mean over the clients' projectors. The server holds them (``own``, part of its state, so a resumed
run continues each client's model), sends each client its own as the round's start, and returns the
global state unchanged, which keeps the interface uniform.
"""
from __future__ import annotations

import dataclasses

from harness.methods.aggregator import Aggregator, flatten_clients, unflatten_clients
from harness.methods.objective import ClientPlan


@dataclasses.dataclass
class Local(Aggregator):
    name = "local"
    secure_aggregation_reason = "it aggregates nothing: each client keeps its own projector"
    per_client_models = True
    supports_dp = False
    no_dp_reason = "it aggregates nothing, so there is nothing to privatize"

    def __post_init__(self):
        super().__post_init__()
        self.own: dict = {}              # client id -> its projector (clients that skip a round keep theirs)

    def configure(self, round_, clients, global_state):
        return {k: ClientPlan(self.own.get(k, global_state)) for k in clients}

    def _aggregate(self, global_state, updates):
        self.own.update({u.client_id: dict(u.state) for u in updates})
        return {k: v.clone() for k, v in global_state.items()}

    def evaluation_targets(self, global_state):
        return {k: self.own[k] for k in sorted(self.own)} or {"global": global_state}

    def _tensors(self):
        return flatten_clients("own", self.own)

    def _load_tensors(self, tensors):
        self.own = unflatten_clients("own", tensors)
