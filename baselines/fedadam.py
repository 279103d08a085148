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

import numpy as np
import torch

from harness.methods.aggregator import Aggregator, sample_weights
from harness.methods.space import Range
from harness.methods.streaming import map_blocks, numpy_ready, streamed_weighted_sum
from harness.core.typecheck import check_range


@dataclasses.dataclass
class FedAdam(Aggregator):
    name = "fedadam"
    supports_secure_aggregation = True   # m, v and theta depend on the mean update only
    tunable = {"eta": Range(1e-3, 1e-1, log=True), "tau": Range(1e-5, 1e-2, log=True)}
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
            m_prev = self.m[k] if k in self.m else torch.zeros_like(d)    # no zeros made when not needed
            v_prev = self.v[k] if k in self.v else torch.zeros_like(d)
            if numpy_ready(theta, m_prev, v_prev):
                out[k], new_m[k], new_v[k] = self._step_blocks(theta, d, m_prev, v_prev, t)
                continue
            m = m_prev * self.beta1 + (1 - self.beta1) * d
            v = v_prev * self.beta2 + (1 - self.beta2) * d * d
            m_hat, v_hat = m, v
            if self.bias_correction:
                m_hat, v_hat = m / (1 - self.beta1 ** t), v / (1 - self.beta2 ** t)
            out[k] = theta.to(torch.float64) + self.eta * m_hat / (v_hat.sqrt() + self.tau)
            new_m[k], new_v[k] = m, v
        self.m, self.v = new_m, new_v
        return out

    def _step_blocks(self, theta, d, m_prev, v_prev, t):
        """The step above, block by block in numpy (cache-sized temporaries): the same IEEE operations
        in the same order per entry, so the same bits, without a dozen full-size float64 temporaries."""
        m, v, out = torch.empty_like(d), torch.empty_like(d), torch.empty_like(d)
        b1, b2, c1, c2 = self.beta1, self.beta2, 1 - self.beta1 ** t, 1 - self.beta2 ** t

        def step(theta_b, d_b, mp_b, vp_b, m_b, v_b, out_b):
            np.add(mp_b * b1, (1 - b1) * d_b, out=m_b)
            np.add(vp_b * b2, (1 - b2) * d_b * d_b, out=v_b)
            m_hat, v_hat = (m_b / c1, v_b / c2) if self.bias_correction else (m_b, v_b)
            np.add(theta_b.astype(np.float64), self.eta * m_hat / (np.sqrt(v_hat) + self.tau), out=out_b)
        flat = [x.reshape(-1).numpy() for x in (theta, d, m_prev, v_prev, m, v, out)]
        map_blocks(step, flat)
        return out, m, v

    def _tensors(self):
        return {**{f"m/{k}": v for k, v in self.m.items()}, **{f"v/{k}": v for k, v in self.v.items()}}

    def _load_tensors(self, tensors):
        self.m = {k[2:]: v for k, v in tensors.items() if k.startswith("m/")}
        self.v = {k[2:]: v for k, v in tensors.items() if k.startswith("v/")}
