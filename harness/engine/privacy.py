"""Client-level differential privacy (DP-FedAvg; McMahan et al., 2018, "Learning Differentially Private
Recurrent Language Models"), optional per run (``privacy.clip``).

Each round, on the server, before the server rule sees the uploads (so Fed-CMP's canonical
decomposition gets the privatized operands):

    delta_k  = theta_k - theta                       (all communicated tensors, one vector)
    delta_k <- delta_k * min(1, C / ||delta_k||_2)    (clip to norm C)
    theta_k <- theta + delta_k + N(0, (z C)^2 / m)    (m participants: the m noises sum to N(0, (z C)^2),
                                                       the Gaussian mechanism on the sum of clipped updates)
    n_k     <- 1                                      (equal weights: the mean's sensitivity is C / m)

The privacy spent is accounted by ``dp-accounting``'s RDP accountant (never by hand): T rounds of the
Gaussian mechanism with noise multiplier z, Poisson-subsampled at q = m / K when not every client takes
part (the harness samples m of K without replacement; the Poisson accountant is the usual
approximation), epsilon at ``privacy.delta`` recorded per round. Noise is drawn from a generator seeded
by (seed, round), so runs and resumes are bit-identical.

Limits, stated: Fed-CMP needs each client's operand, so it cannot run under secure aggregation, and
its reliability weights read the client-reported alignment errors, which are not privatized; rules
with extra uploads (SCAFFOLD's control variates) and ``local`` (no aggregation) are refused.
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import List

import torch

from harness.core.types import ClientUpdate

ORDERS = tuple(range(2, 257))          # integer Renyi orders


def noise_generator(seed: int, round_: int) -> torch.Generator:
    digest = hashlib.sha256(f"dp-noise-{seed}-{round_}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def clip_factor(global_state, state, clip: float) -> float:
    norm = torch.sqrt(sum(((state[k].double() - global_state[k].double()) ** 2).sum() for k in sorted(global_state)))
    return min(1.0, clip / float(norm)) if float(norm) > 0 else 1.0


def privatize(global_state, updates: List[ClientUpdate], cfg, gen: torch.Generator):
    """``cfg``: the run's ``privacy`` section (PrivacyConfig)."""
    # returns (privatized updates, fraction of clients whose update was clipped)
    std = cfg.noise_multiplier * cfg.clip / len(updates) ** 0.5
    out, clipped = [], 0
    for u in updates:
        factor = clip_factor(global_state, u.state, cfg.clip)
        clipped += factor < 1.0
        state = {}
        for k in sorted(global_state):   # one order whatever the dict's (a resumed state comes back sorted)
            g = global_state[k]
            delta = (u.state[k].double() - g.double()) * factor
            noise = torch.randn(g.shape, generator=gen, dtype=torch.float64) * std
            state[k] = (g.double() + delta + noise).to(g.dtype)
        out.append(dataclasses.replace(u, state=state, num_samples=1))
    return out, clipped / len(updates)


def epsilon(cfg, rounds: int, sampled: int, clients: int) -> float:
    """Epsilon at ``cfg.delta`` after ``rounds`` rounds of ``sampled`` of ``clients`` participants."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant
    if cfg.noise_multiplier == 0:
        return float("inf")
    event = dp_accounting.GaussianDpEvent(cfg.noise_multiplier)
    if sampled < clients:
        event = dp_accounting.PoissonSampledDpEvent(sampled / clients, event)
    accountant = RdpAccountant(orders=list(ORDERS))
    accountant.compose(event, rounds)
    return float(accountant.get_epsilon(cfg.delta))
