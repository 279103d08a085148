"""FedAdam — Reddi et al., "Adaptive Federated Optimization", ICLR 2021 (arXiv:2003.00295), Alg. 2.

Server rule, per tensor, with the pseudo-gradient Delta = sum_k n_k Delta_k / sum_k n_k:
    m <- beta1 m + (1 - beta1) Delta
    v <- beta2 v + (1 - beta2) Delta^2
    theta <- theta + eta * m / (sqrt(v) + tau)
m and v start at zero. ``bias_correction=True`` uses m / (1 - beta1^t) and v / (1 - beta2^t) instead
(not in the paper's Algorithm 2). Defaults (SPEC section 2, the paper's tuned ranges): eta = 1e-2,
beta1 = 0.9, beta2 = 0.99, tau = 1e-3, bias_correction = False.
Server state: m, v and the round counter t.
"""
from __future__ import annotations

import dataclasses

import torch

from harness.aggregator import Aggregator, sample_weights
from harness.streaming import streamed_weighted_sum
from harness.typecheck import check_range


@dataclasses.dataclass
class FedAdam(Aggregator):
    name = "fedadam"
    eta: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3
    bias_correction: bool = False

    def __post_init__(self):
        super().__post_init__()
        self.m: dict = {}
        self.v: dict = {}

    def validate(self):
        check_range("fedadam.eta", self.eta, lo=0.0, lo_open=True)
        check_range("fedadam.beta1", self.beta1, lo=0.0, hi=1.0, hi_open=True)
        check_range("fedadam.beta2", self.beta2, lo=0.0, hi=1.0, hi_open=True)
        check_range("fedadam.tau", self.tau, lo=0.0, lo_open=True)

    def _aggregate(self, global_state, updates):
        w = sample_weights(updates)
        t = self.round + 1
        new_m, new_v, out = {}, {}, {}
        for k, theta in global_state.items():
            d = streamed_weighted_sum([u.state[k] for u in updates], w, base=theta)
            m = self.m.get(k, torch.zeros_like(d)) * self.beta1 + (1 - self.beta1) * d
            v = self.v.get(k, torch.zeros_like(d)) * self.beta2 + (1 - self.beta2) * d * d
            m_hat, v_hat = m, v
            if self.bias_correction:
                m_hat, v_hat = m / (1 - self.beta1 ** t), v / (1 - self.beta2 ** t)
            out[k] = theta.to(torch.float64) + self.eta * m_hat / (v_hat.sqrt() + self.tau)
            new_m[k], new_v[k] = m, v
        self.m, self.v = new_m, new_v
        return out

    def _tensors(self):
        return {**{f"m/{k}": v for k, v in self.m.items()}, **{f"v/{k}": v for k, v in self.v.items()}}

    def _load_tensors(self, tensors):
        self.m = {k[2:]: v for k, v in tensors.items() if k.startswith("m/")}
        self.v = {k[2:]: v for k, v in tensors.items() if k.startswith("v/")}
