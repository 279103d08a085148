"""FedProx — Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020
(arXiv:1812.06127).

Client objective: plain loss + (mu/2) * ||theta_local - theta_global||^2 over the projector
(:func:`proximal_term`, called by the client trainer), mu = 0.01 (SPEC section 2).
Server rule: FedAvg.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import torch

from baselines.fedavg import fedavg
from harness.methods.aggregator import Aggregator
from harness.methods.objective import ClientObjective
from harness.methods.space import Range
from harness.core.typecheck import check_range


def proximal_term(local: Mapping[str, torch.Tensor], global_: Mapping[str, torch.Tensor],
                  mu: float) -> torch.Tensor:
    """(mu/2) * sum over tensors of ||local - global||^2; differentiable in ``local``."""
    sq = sum(((local[k] - global_[k].detach().to(local[k].dtype)) ** 2).sum() for k in global_)
    return 0.5 * mu * sq


class ProximalObjective(ClientObjective):
    name = "fedprox"

    def __init__(self, mu: float):
        super().__init__()
        self.mu = mu

    def term(self, x):
        device = next(iter(x.params.values())).device
        return proximal_term(x.params, {k: v.to(device) for k, v in x.global_state.items()}, self.mu)


@dataclasses.dataclass
class FedProx(Aggregator):
    name = "fedprox"
    supports_secure_aggregation = True   # the proximal term is on the client; the rule is FedAvg
    tunable = {"mu": Range(1e-4, 1.0, log=True)}
    mu: float = 0.01

    def validate(self):
        check_range("fedprox.mu", self.mu, lo=0.0)

    def client_objective(self):
        return ProximalObjective(self.mu)

    def _aggregate(self, global_state, updates):
        return fedavg(updates, global_state)
