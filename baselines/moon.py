"""MOON — Li, He, Song, "Model-Contrastive Federated Learning", CVPR 2021 (arXiv:2103.16257).

Client objective: plain loss + mu * l_con with, per sample,
    l_con = -log( exp(cos(z, z_glob)/tau) / (exp(cos(z, z_glob)/tau) + exp(cos(z, z_prev)/tau)) ),
averaged over the batch. In Fed-MA z is the mean over visual tokens of the projector output (the
projector is the whole trainable model), z_glob the same from the frozen global projector and
z_prev from the client's previous-round projector. In round 1 there is no previous projector: the
negative is skipped, the fraction is 1 and l_con = 0. Defaults mu = 1, tau = 0.5 (SPEC section 2).
Server rule: FedAvg.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F

from baselines.fedavg import fedavg
from harness.aggregator import Aggregator
from harness.typecheck import check_range


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


@dataclasses.dataclass
class Moon(Aggregator):
    name = "moon"
    client_objective = "moon"
    mu: float = 1.0
    tau: float = 0.5

    def validate(self):
        check_range("moon.mu", self.mu, lo=0.0)
        check_range("moon.tau", self.tau, lo=0.0, lo_open=True)

    def _aggregate(self, global_state, updates):
        return fedavg(updates, global_state)
