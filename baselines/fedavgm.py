"""FedAvgM — Hsu, Qi, Brown, "Measuring the Effects of Non-Identical Data Distribution for Federated
Visual Classification", 2019 (arXiv:1909.06335): FedAvg with server momentum.

Server rule, per tensor, with the FedAvg update Delta = sum_k n_k Delta_k / sum_k n_k:
    v <- beta v + Delta;   theta <- theta + eta v
v starts at zero. Defaults: ``momentum`` beta = 0.9 (the paper's best-performing value in most of its
sweeps), ``server_lr`` eta = 1.0; beta = 0 is FedAvg exactly. It is the plain-momentum control for
Fed-CMP's OPM: momentum on the averaged update, with no basis alignment. Server state: v.
Client objective: plain.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from harness.methods.aggregator import Aggregator, sample_weights
from harness.methods.space import Range
from harness.methods.streaming import map_blocks, numpy_ready, streamed_weighted_sum
from harness.core.typecheck import check_range


@dataclasses.dataclass
class FedAvgM(Aggregator):
    name = "fedavgm"
    supports_secure_aggregation = True   # v and theta depend on the mean update only
    tunable = {"momentum": Range(0.0, 0.95), "server_lr": Range(0.25, 4.0, log=True)}
    momentum: float = 0.9
    server_lr: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        self.v: dict = {}

    def validate(self):
        check_range("fedavgm.momentum", self.momentum, lo=0.0, hi=1.0, hi_open=True)
        check_range("fedavgm.server_lr", self.server_lr, lo=0.0, lo_open=True)

    def _aggregate(self, global_state, updates):
        w = sample_weights(updates)
        out = {}
        for k, theta in global_state.items():
            d = streamed_weighted_sum([u.state[k] for u in updates], w, base=theta)
            v_prev = self.v.get(k)
            if numpy_ready(theta, d, *([] if v_prev is None else [v_prev])):
                self.v[k], out[k] = self._step_blocks(theta, d, v_prev)
                continue
            self.v[k] = self.momentum * v_prev + d if v_prev is not None else d
            out[k] = theta.to(torch.float64) + self.server_lr * self.v[k]
        return out

    def _step_blocks(self, theta, d, v_prev):
        """v and theta as above, block by block in numpy: the same IEEE operations in the same order per
        entry (the same bits) without full-size float64 temporaries."""
        v = d if v_prev is None else torch.empty_like(d)
        out = torch.empty_like(d)

        def step(theta_b, d_b, v_b, out_b, *prev_b):
            if prev_b:
                np.add(self.momentum * prev_b[0], d_b, out=v_b)
            np.add(theta_b.astype(np.float64), self.server_lr * v_b, out=out_b)
        arrays = [theta, d, v, out] + ([] if v_prev is None else [v_prev])
        map_blocks(step, [x.reshape(-1).numpy() for x in arrays])
        return v, out

    def _tensors(self):
        return {f"v/{k}": v for k, v in self.v.items()}

    def _load_tensors(self, tensors):
        self.v = {k[2:]: v for k, v in tensors.items() if k.startswith("v/")}
