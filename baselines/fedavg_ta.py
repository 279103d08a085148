"""FedAvg + Task Arithmetic — Ilharco et al., "Editing Models with Task Arithmetic", ICLR 2023
(arXiv:2212.04089), applied to client updates as task vectors.

Server rule: theta <- theta + lambda * sum_k Delta_k with lambda = ``scale`` = 0.3 (SPEC section 2;
task arithmetic's usual range 0.3-0.5). No server state. Client objective: plain.
"""
from __future__ import annotations

import dataclasses

import torch

from harness.aggregator import Aggregator, delta
from harness.merging import weighted_sum
from harness.typecheck import check_range


@dataclasses.dataclass
class FedAvgTA(Aggregator):
    name = "fedavg_ta"
    scale: float = 0.3

    def validate(self):
        check_range("fedavg_ta.scale", self.scale, lo=-1e6, hi=1e6)

    def _aggregate(self, global_state, updates):
        ones = [1.0] * len(updates)
        return {k: theta.to(torch.float64)
                + self.scale * weighted_sum((delta(u, global_state, k) for u in updates), ones)
                for k, theta in global_state.items()}
