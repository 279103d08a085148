"""Reliability-weighted fusion: one weight omega_k per client (normalized to sum to 1).

m_k = ||theta_k - theta||_2 over the whole projector, e_k the client's alignment error:
  full: omega_k ~ m_k * exp(-lam * e_k)   mag: omega_k ~ m_k
  qua:  omega_k ~ exp(-lam * e_k)         none: omega_k ~ n_k (standard weighted averaging)
"""
from __future__ import annotations

import logging
import math
from typing import Mapping, Sequence

import torch

from harness.methods.aggregator import sample_weights
from harness.methods.streaming import squared_distance
from harness.core.types import ClientUpdate

log = logging.getLogger(__name__)
F64 = torch.float64


def update_magnitude(u: ClientUpdate, global_state: Mapping[str, torch.Tensor]) -> float:
    """m_k, its square summed block by block (:func:`harness.methods.streaming.squared_distance`), tensors in
    sorted-name order."""
    return math.sqrt(sum(squared_distance(u.state[k], global_state[k]) for k in sorted(global_state)))


def reliability_weights(updates: Sequence[ClientUpdate], global_state, rwf: str, lam: float) -> torch.Tensor:
    if rwf == "none":
        return sample_weights(updates)
    if rwf in ("full", "qua"):
        missing = [u.client_id for u in updates if u.align_error is None]
        if missing:
            raise ValueError(f"fedcmp rwf={rwf} needs align_error from every client; missing for {missing}")
    mag = torch.tensor([update_magnitude(u, global_state) if rwf in ("full", "mag") else 1.0
                        for u in updates], dtype=F64)
    qua = torch.tensor([math.exp(-lam * u.align_error) if rwf in ("full", "qua") else 1.0
                        for u in updates], dtype=F64)
    raw = mag * qua
    if not raw.sum() > 0:
        log.warning("fedcmp: all reliability scores are zero (no client moved); using sample weights")
        return sample_weights(updates)
    return raw / raw.sum()
