"""SCAFFOLD — Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for Federated Learning",
ICML 2020 (arXiv:1910.06378), Algorithm 1 with option II.

Client i receives the server model x, the server control variate c and its own c_i (zeros at first) and
trains on the corrected gradient g_i(y) - c_i + c, which is the gradient of the term <c - c_i, y> added
to its loss. After the round, c_i+ = c_i - c + (x - y_i) / (sum_t eta_t) (option II; sum_t eta_t is K eta
for K steps at a constant lr, and the round's step sizes summed under a schedule), and it uploads
y_i (as every client does) and Delta c_i = c_i+ - c_i.
Server: x <- x + eta_g mean_i (y_i - x) (``server_lr`` eta_g = 1.0: the participants' plain mean, as in
the paper); c <- c + (1/N) sum_i Delta c_i with N = federation.clients; c_i <- c_i+ for each participant
(the server holds the c_i for the simulation; a client that skips rounds keeps its c_i). Server state:
c and every c_i. The harness's local optimizer is AdamW (SPEC section 1): the correction acts on the
gradient before AdamW's normalization, a common practical adaptation; with SGD it is the paper's rule.
"""
from __future__ import annotations

import dataclasses

import torch

from harness.methods.aggregator import Aggregator, flatten_clients, unflatten_clients
from harness.methods.streaming import streamed_weighted_sum
from harness.methods.objective import ClientObjective, ClientPlan
from harness.methods.space import Range
from harness.core.typecheck import check_range


class ControlledObjective(ClientObjective):
    name = "scaffold"

    def term(self, x):
        correction = (x.extras["c"], x.extras["c_i"])
        return sum((p * (correction[0][k] - correction[1][k]).to(p.device, p.dtype)).sum() for k, p in x.params.items())

    def uploads(self, start, trained, extras, lrs):
        steps = sum(lrs)
        if steps <= 0:      # no step this round: nothing learned about the drift
            return {"delta_c": {k: torch.zeros_like(v) for k, v in extras["c"].items()}}
        return {"delta_c": {k: (-extras["c"][k].double() + (start[k].double().cpu() - trained[k].double().cpu()) / steps
                                ).to(extras["c"][k].dtype) for k in trained}}


@dataclasses.dataclass
class Scaffold(Aggregator):
    name = "scaffold"
    secure_aggregation_reason = ("its server keeps each client's control variate and reads every "
                                 "client's control-variate upload")
    supports_dp = False
    no_dp_reason = "its control-variate uploads are not privatized"
    supports_lora = False
    no_lora_reason = "SCAFFOLD's control variates are defined on the projector's gradients only"
    tunable = {"server_lr": Range(0.25, 4.0, log=True)}
    server_lr: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        self.c: dict = {}                # the server control variate, per tensor
        self.c_i: dict = {}              # client id -> its control variate

    def validate(self):
        check_range("scaffold.server_lr", self.server_lr, lo=0.0, lo_open=True)

    def client_objective(self):
        return ControlledObjective()

    @classmethod
    def synthetic_uploads(cls, global_state, generator):
        """A control-variate update of the size of the projector, small beside a round's update."""
        return {"delta_c": {n: 1e-4 * torch.randn(t.shape, generator=generator) for n, t in global_state.items()}}

    def configure(self, round_, clients, global_state):
        zeros = {k: torch.zeros_like(v) for k, v in global_state.items()}
        c = self.c or zeros
        return {k: ClientPlan(global_state, {"c": c, "c_i": self.c_i.get(k, zeros)}) for k in clients}

    def _aggregate(self, global_state, updates):
        mean = [1.0 / len(updates)] * len(updates)
        n = self.num_clients or len(updates)
        out = {}
        for k, theta in global_state.items():
            mean_update = streamed_weighted_sum([u.state[k] for u in updates], mean, base=theta)
            out[k] = theta.to(torch.float64) + self.server_lr * mean_update
            summed = streamed_weighted_sum([u.extras["delta_c"][k] for u in updates], [1.0 / n] * len(updates))
            self.c[k] = ((self.c[k].to(torch.float64) if k in self.c else 0.0) + summed).to(theta.dtype)
        for u in updates:
            old = self.c_i.get(u.client_id, {})
            self.c_i[u.client_id] = {k: (old[k].to(torch.float64) + d.to(torch.float64) if k in old else
                                         d.to(torch.float64)).to(global_state[k].dtype)
                                     for k, d in u.extras["delta_c"].items()}
        return out

    def _tensors(self):
        return {**{f"c/{k}": v for k, v in self.c.items()}, **flatten_clients("ci", self.c_i)}

    def _load_tensors(self, tensors):
        self.c = {k[2:]: v for k, v in tensors.items() if k.startswith("c/")}
        self.c_i = unflatten_clients("ci", tensors)
