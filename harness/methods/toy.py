"""A convex toy federation for demonstrating and sanity-checking the server rules.

Five non-IID clients fit one linear map y = W* x + b* (12 x 16, SPEC section 2's numerical note):
client k's inputs are shifted and stretched along its own block of input dimensions, every round
brings fresh samples (one pass), and local training is a few full-batch gradient steps. The
reported error is ||theta - theta*|| / ||theta*|| over weight and bias (mean over clients for
``local``). Fed-CMP's alignment error e_k stands in as the client's relative residual.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import torch

from harness.core.registry import build_aggregator
from harness.core.types import ClientUpdate

F64 = torch.float64


@dataclass
class ToyWorld:
    d_in: int = 16
    d_out: int = 12
    clients: int = 5
    samples: int = 64
    local_steps: int = 10
    lr: float = 0.05
    noise: float = 0.05
    seed: int = 0

    def __post_init__(self):
        g = torch.Generator().manual_seed(self.seed)
        self.target = {"linear.weight": torch.randn(self.d_out, self.d_in, generator=g, dtype=F64),
                       "linear.bias": torch.randn(self.d_out, generator=g, dtype=F64)}
        self.init = {k: 0.1 * torch.randn(v.shape, generator=g, dtype=F64) for k, v in self.target.items()}

    def batch(self, client: int, round_: int):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + round_ * 101 + client)
        x = torch.randn(self.samples, self.d_in, generator=g, dtype=F64) * 0.3
        block = torch.arange(self.d_in) % self.clients == client   # the client's own directions
        x[:, block] = x[:, block] * 4.0 + 1.0
        y = x @ self.target["linear.weight"].T + self.target["linear.bias"]
        return x, y + self.noise * torch.randn(y.shape, generator=g, dtype=F64)

    def train(self, state: Dict[str, torch.Tensor], client: int, round_: int):
        """Local full-batch gradient descent; returns (new state, relative residual)."""
        x, y = self.batch(client, round_)
        w, b = state["linear.weight"].clone(), state["linear.bias"].clone()
        for _ in range(self.local_steps):
            r = x @ w.T + b - y
            w -= self.lr * r.T @ x / len(x)
            b -= self.lr * r.mean(0)
        residual = float((x @ w.T + b - y).norm() / y.norm())
        return {"linear.weight": w, "linear.bias": b}, residual

    def error(self, state: Dict[str, torch.Tensor]) -> float:
        num = sum(float((state[k] - v).square().sum()) for k, v in self.target.items())
        den = sum(float(v.square().sum()) for v in self.target.values())
        return (num / den) ** 0.5


def run_toy(method: str, rounds: int = 10, world: ToyWorld | None = None, **hparams) -> List[float]:
    """Relative error of the global model after each round (``local``: mean over clients)."""
    world = world or ToyWorld()
    agg = build_aggregator(method, **hparams)
    agg.num_clients = world.clients
    theta = dict(world.init)
    errors = []
    for t in range(rounds):
        plans = agg.configure(t + 1, range(world.clients), theta)
        results = [world.train(dict(plans[k].start), k, t) for k in range(world.clients)]
        updates = [ClientUpdate(k, s, world.samples, e) for k, (s, e) in enumerate(results)]
        theta = agg.aggregate(theta, updates)
        targets = agg.evaluation_targets(theta)
        errors.append(sum(world.error(s) for s in targets.values()) / len(targets))
    return errors
