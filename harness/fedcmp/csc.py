"""Canonical space construction: a shared left basis U and spectrum Sigma for the client operands.

With M = [X_1 ... X_K] (column-wise) and its thin SVD M = U Sigma [V_1; ...; V_K]^T, every client
is X_k = U Sigma V_k^T. Two ways to get (U, Sigma), both returning a fixed number ``r`` of columns
so that OPM can compare bases across rounds even when K changes:

- ``gram``: U, Sigma^2 from eigh(sum_k X_k X_k^T); memory O(d_out^2), time linear in K, one client
  operand in memory at a time; the sum is accumulated on its upper triangle only (half the FLOPs).
- ``full``: the SVD of the concatenated M (memory O(K d_out d_in)), completed to r columns.

Components with sigma <= tol * sigma_max get sigma = 0 (the Gram path cannot resolve smaller
sigma; the coefficients never divide by them). The coefficients are V_k = X_k^T U Sigma^+.
"""
from __future__ import annotations

from typing import Callable, Iterable, Tuple

import torch

Operands = Callable[[], Iterable[torch.Tensor]]   # a fresh iterator over the K float64 operands


# Rows per block of the Gram's upper triangle: 8 blocks at the paper's d_out = 4096, so the products
# cost (8 + 1) / 16 = 56% of the full X X^T while each stays a large GEMM
GRAM_BLOCK_ROWS = 512


def add_upper_gram(gram: torch.Tensor, x: torch.Tensor, block: int = GRAM_BLOCK_ROWS) -> torch.Tensor:
    """gram += X X^T on the upper triangle only (block rows i: G[i, i:] += X_i X_{i:}^T; the blocks
    below the diagonal are never written), a symmetric rank-k update by plain GEMMs, so it runs on
    any device. Measured at 4096 x 4097 on this 2-core CPU (loaded): 1.3x faster than the full
    product; scipy's dsyrk 1.37x, within the noise, and CPU-only."""
    for i in range(0, x.shape[0], block):
        gram[i:i + block, i:].addmm_(x[i:i + block], x[i:].T)
    return gram


def gram_basis(operands: Operands, r: int) -> Tuple[torch.Tensor, torch.Tensor]:
    gram = None
    for x in operands():
        if gram is None:
            gram = x.new_zeros(x.shape[0], x.shape[0])
        add_upper_gram(gram, x, GRAM_BLOCK_ROWS)
    evals, evecs = torch.linalg.eigh(gram, UPLO="U")     # reads the upper triangle only
    evals, evecs = evals.flip(0)[:r], evecs.flip(1)[:, :r]   # descending
    return evecs, evals.clamp_min(0).sqrt()


def svd_basis(operands: Operands, r: int) -> Tuple[torch.Tensor, torch.Tensor]:
    m = torch.cat(list(operands()), dim=1)
    u, s, _ = torch.linalg.svd(m, full_matrices=False)
    if u.shape[1] < r:   # more rows than columns in M: complete U with an orthonormal complement
        q, _ = torch.linalg.qr(u, mode="complete")
        u = torch.cat([u, q[:, u.shape[1]:]], dim=1)
        s = torch.cat([s, s.new_zeros(r - s.shape[0])])
    return u[:, :r], s[:r]


BASES = {"gram": gram_basis, "full": svd_basis}


def canonical_basis(operands: Operands, d_out: int, method: str, rank: int | None,
                    tol: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(U [d_out, r], Sigma [r]) with sigma <= tol * sigma_max set to zero; r = min(rank, d_out)."""
    r = d_out if rank is None else min(rank, d_out)
    u, s = BASES[method](operands, r)
    s_max = s.max() if s.numel() else s.new_zeros(())
    return u, torch.where(s > tol * s_max, s, torch.zeros_like(s))


def pseudo_inverse(s: torch.Tensor) -> torch.Tensor:
    return torch.where(s > 0, 1.0 / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(s))


def coefficients(x: torch.Tensor, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """V = X^T U Sigma^+ ([d_in, r]), so that X = U Sigma V^T on the kept components."""
    return (x.T @ u) * pseudo_inverse(s)


def reconstruct(u: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u * s) @ v.T
