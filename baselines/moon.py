"""MOON — Li, He, Song, "Model-Contrastive Federated Learning", CVPR 2021 (arXiv:2103.16257).

Client objective: plain loss + mu * l_con with, per sample,
    l_con = -log( exp(cos(z, z_glob)/tau) / (exp(cos(z, z_glob)/tau) + exp(cos(z, z_prev)/tau)) ),
averaged over the batch. In Fed-MA z is the mean over visual tokens of the projector output (the
projector is the whole trainable model), z_glob the same from the frozen global projector and
z_prev from the client's previous-round projector. In round 1 there is no previous projector: the
negative is skipped, the fraction is 1 and l_con = 0. Defaults mu = 1, tau = 0.5 (SPEC section 2).
Server rule: FedAvg. The server keeps each client's last projector (``prev``, part of its state; a client
that skips rounds keeps its last one) and sends it with the round's plan.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F

from baselines.fedavg import fedavg
from harness.methods.aggregator import Aggregator, flatten_clients, unflatten_clients
from harness.methods.objective import ClientObjective, ClientPlan
from harness.methods.space import Range
from harness.core.typecheck import check_range


def moon_contrastive_term(z: torch.Tensor, z_glob: torch.Tensor, z_prev: Optional[torch.Tensor],
                          mu: float, tau: float) -> torch.Tensor:
    """mu * mean_i l_con(z_i); z, z_glob, z_prev are [batch, dim]; differentiable in ``z``."""
    pos = F.cosine_similarity(z, z_glob.detach(), dim=-1) / tau
    if z_prev is None:
        logits = pos[:, None]
    else:
        neg = F.cosine_similarity(z, z_prev.detach(), dim=-1) / tau
        logits = torch.stack([pos, neg], dim=1)
    return mu * (torch.logsumexp(logits, dim=1) - pos).mean()


class MoonObjective(ClientObjective):
    name = "moon"

    def __init__(self, mu: float, tau: float):
        super().__init__()
        self.mu, self.tau = mu, tau

    def term(self, x):
        z = x.proj.mean(dim=1)
        z_glob = x.project_with(x.global_state, x.feats).mean(dim=1)
        prev = x.extras.get("prev")
        z_prev = None if prev is None else x.project_with(prev, x.feats).mean(dim=1)
        return moon_contrastive_term(z.float(), z_glob.float(), None if z_prev is None else z_prev.float(),
                                     self.mu, self.tau)


@dataclasses.dataclass
class Moon(Aggregator):
    name = "moon"
    secure_aggregation_reason = ("its server keeps each client's previous-round projector (sent back as the "
                                 "contrastive negative), so it holds individual uploads")
    tunable = {"mu": Range(0.01, 10.0, log=True)}
    mu: float = 1.0
    tau: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        self.prev: dict = {}             # client id -> its projector of the last round it trained

    def validate(self):
        check_range("moon.mu", self.mu, lo=0.0)
        check_range("moon.tau", self.tau, lo=0.0, lo_open=True)

    def client_objective(self):
        return MoonObjective(self.mu, self.tau)

    def configure(self, round_, clients, global_state):
        return {k: ClientPlan(global_state, {"prev": self.prev[k]} if k in self.prev else {}) for k in clients}

    def _aggregate(self, global_state, updates):
        self.prev.update({u.client_id: dict(u.state) for u in updates})
        return fedavg(updates, global_state)

    def _tensors(self):
        return flatten_clients("prev", self.prev)

    def _load_tensors(self, tensors):
        self.prev = unflatten_clients("prev", tensors)
