"""FedAvg — McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
Data", AISTATS 2017 (arXiv:1602.05629).

Server rule: theta <- sum_k n_k theta_k / sum_k n_k, with n_k the client's sample count this round.
No hyperparameters, no server state. Client objective: plain local training.
"""
from __future__ import annotations

import dataclasses

from harness.aggregator import Aggregator, sample_weights
from harness.streaming import streamed_weighted_sum


def fedavg(updates, keys) -> dict:
    """The sample-weighted mean of the client states (shared by FedProx and MOON), streamed block by
    block: each client read once, float64 only in a cache-sized scratch."""
    w = sample_weights(updates)
    return {k: streamed_weighted_sum([u.state[k] for u in updates], w) for k in keys}


@dataclasses.dataclass
class FedAvg(Aggregator):
    name = "fedavg"

    def _aggregate(self, global_state, updates):
        return fedavg(updates, global_state)
