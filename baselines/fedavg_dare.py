"""FedAvg + DARE — Yu et al., "Language Models are Super Mario: Absorbing Abilities from Homologous
Models as a Free Lunch", ICML 2024 (arXiv:2311.03099), applied to the client updates Delta_k.

Server rule: drop each coordinate of Delta_k independently with probability p = ``drop_rate`` (0.2)
and rescale the survivors by 1/(1-p) (so E[Delta~_k] = Delta_k), then
theta <- theta + sum_k n_k Delta~_k / sum_k n_k.
Masks are reproducible: client k's generator in round t is seeded from (seed, t, k), and the
tensors draw from it in sorted-name order. Server state: the round counter.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from harness.aggregator import Aggregator, delta, sample_weights
from harness.merging import weighted_sum
from harness.typecheck import check_range


def dare_generator(seed: int, round_: int, client_id: int) -> torch.Generator:
    """A CPU generator whose stream depends only on (seed, round, client)."""
    entropy = np.random.SeedSequence([seed, round_, client_id]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(entropy[0]) << 32 | int(entropy[1]))


def dare_drop(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Zero each entry with probability p and scale the rest by 1/(1-p)."""
    keep = torch.rand(x.shape, generator=gen, dtype=torch.float64) >= p
    return torch.where(keep, x / (1.0 - p), torch.zeros_like(x))


@dataclasses.dataclass
class FedAvgDare(Aggregator):
    name = "fedavg_dare"
    drop_rate: float = 0.2
    seed: int = 0

    def validate(self):
        check_range("fedavg_dare.drop_rate", self.drop_rate, lo=0.0, hi=1.0, hi_open=True)
        check_range("fedavg_dare.seed", self.seed, lo=0)

    def _aggregate(self, global_state, updates):
        keys = sorted(global_state)
        dropped = []
        for u in updates:
            gen = dare_generator(self.seed, self.round, u.client_id)
            dropped.append({k: dare_drop(delta(u, global_state, k), self.drop_rate, gen) for k in keys})
        w = sample_weights(updates)
        return {k: global_state[k].to(torch.float64) + weighted_sum((d[k] for d in dropped), w)
                for k in keys}
