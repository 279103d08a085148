"""FedAvg — McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
Data", AISTATS 2017 (arXiv:1602.05629).

Server rule: theta <- theta + eta_s (sum_k n_k theta_k / sum_k n_k - theta), with n_k the client's sample
count this round and eta_s = ``server_lr`` (default 1: the plain mean, returned as is, bit for bit; Reddi
et al. 2021's FedAvg with a server learning rate, the step-size control for the rules that scale their
update: FedAvg+TA's 0.3 x the sum of 5 updates is eta_s = 1.5). No server state. Client objective: plain.
"""
from __future__ import annotations

import dataclasses

import torch

from harness.methods.aggregator import Aggregator, sample_weights
from harness.methods.space import Range
from harness.methods.streaming import streamed_weighted_sum
from harness.core.typecheck import check_range


def fedavg(updates, keys) -> dict:
    """The sample-weighted mean of the client states (shared by FedProx and MOON), streamed block by
    block: each client read once, float64 only in a cache-sized scratch."""
    w = sample_weights(updates)
    return {k: streamed_weighted_sum([u.state[k] for u in updates], w) for k in keys}


@dataclasses.dataclass
class FedAvg(Aggregator):
    name = "fedavg"
    supports_secure_aggregation = True
    tunable = {"server_lr": Range(0.25, 4.0, log=True)}
    server_lr: float = 1.0

    def validate(self):
        check_range("fedavg.server_lr", self.server_lr, lo=0.0, lo_open=True)

    def _aggregate(self, global_state, updates):
        mean = fedavg(updates, global_state)
        if self.server_lr == 1.0:
            return mean
        return {k: global_state[k].to(torch.float64) + self.server_lr * (mean[k] - global_state[k].to(torch.float64))
                for k in global_state}
