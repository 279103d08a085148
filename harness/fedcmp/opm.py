"""Orthogonality-preserved momentum: smooth the canonical basis across rounds.

Per matrix, from round 2 on, with the previous (U_prev, Sigma_prev) and this round's (U~, Sigma~, V~):
  1. sign-align: flip u~_j (and column j of V~) where <u_prev_j, u~_j> < 0;
  2. delta = mean_j (1 - cos(u_prev_j, u~_j)) over components alive in both rounds;
     beta = clip(beta_min + gamma * delta, beta_min, beta_max)  (a larger shift smooths more);
  3. U = polar(beta U_prev + (1 - beta) U~), Sigma = beta Sigma_prev + (1 - beta) Sigma~,
     with polar(A) = P Q^T from the SVD A = P S Q^T (exact, not Newton-Schulz), computed as
     A (A^T A)^(-1/2) from eigh(A^T A) when A is well conditioned (it is: a convex mix of two
     sign-aligned orthonormal bases), about 1.6x cheaper than the SVD at 4096x4096.
Without CSC, :func:`ema_step` is the same adaptive EMA on the fused operand itself.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from harness.merging import cosine


class OPMResult(NamedTuple):
    u: torch.Tensor
    s: torch.Tensor
    v: torch.Tensor
    beta: float
    delta: float


# eigh squares the condition number: beyond this kappa(A)^2 the SVD is the accurate route
MAX_GRAM_CONDITION = 1e6


def polar(a: torch.Tensor) -> torch.Tensor:
    """The orthonormal polar factor of ``a`` (the closest matrix with orthonormal columns)."""
    a = a.contiguous()   # one memory layout, so a resumed run (loaded tensors) rounds bit-identically
    evals, evecs = torch.linalg.eigh(a.T @ a)
    if evals[0] > evals[-1] / MAX_GRAM_CONDITION:
        return a @ ((evecs * evals.rsqrt()) @ evecs.T)
    p, _, qh = torch.linalg.svd(a, full_matrices=False)
    return p @ qh


def adaptive_beta(delta: float, beta_min: float, beta_max: float, gamma: float) -> float:
    return float(min(max(beta_min + gamma * delta, beta_min), beta_max))


def opm_step(u_prev, s_prev, u, s, v, beta_min, beta_max, gamma) -> OPMResult:
    flip = torch.where((u_prev * u).sum(0) < 0, -1.0, 1.0).to(u.dtype)
    u, v = u * flip, v * flip
    alive = (s_prev > 0) & (s > 0)
    shift = 1.0 - (u_prev * u).sum(0)            # columns are unit vectors
    delta = float(shift[alive].mean()) if alive.any() else 0.0
    beta = adaptive_beta(delta, beta_min, beta_max, gamma)
    u_new = polar(beta * u_prev + (1.0 - beta) * u)
    s_new = beta * s_prev + (1.0 - beta) * s
    return OPMResult(u_new, s_new, v, beta, delta)


def relative_change(after: torch.Tensor, before: torch.Tensor) -> float:
    """||after - before|| / ||before||: how far momentum moved this round's fusion (recorded)."""
    return float((after - before).norm() / before.norm().clamp_min(1e-300))


def ema_step(prev: torch.Tensor, current: torch.Tensor, beta_min, beta_max, gamma):
    """(beta prev + (1 - beta) current, beta, delta) with delta = 1 - cos(prev, current)."""
    delta = float(1.0 - cosine(prev, current))
    beta = adaptive_beta(delta, beta_min, beta_max, gamma)
    return beta * prev + (1.0 - beta) * current, beta, delta
