"""Orthogonality-preserved momentum (OPM): smooth the canonical basis and spectrum across rounds.

Per matrix, from round 2 on, with the stored (U_prev, sigma_prev) and this round's (U~, sigma~, V~), the
fused coefficients V~ such that X~ = U~ diag(sigma~) V~^T (SPEC section 2, as amended):
  1. groups: with rho_j = (sigma_j - sigma_{j+1}) / sigma_j (0 where sigma_j = 0), split between j and j+1
     only where min(rho~_j, rho_prev_j) >= g (``opm_gap``): a boundary must exist in both spectra;
  2. align each group G by the orthogonal Procrustes rotation R_G = P Q^T from the SVD of
     U~_G^T U_prev,G (a singleton is the paper's sign flip, -1 iff <u~_j, u_prev_j> < 0):
     U^ = U~ R, V^ = V~ R, S^ = R^T diag(sigma~) R (block-diagonal), so U^ S^ V^^T = X~ exactly;
  3. delta = mean_j (1 - <u_prev_j, u^_j>) over components alive in both rounds,
     beta = clip(beta_min + gamma * delta, beta_min, beta_max) (a larger shift smooths more);
  4. U = polar(beta U_prev + (1 - beta) U^) (exact polar factor, not Newton-Schulz),
     S = beta diag(sigma_prev) + (1 - beta) S^;
  5. per group S_G = Q_G Lambda_G Q_G^T (descending): store U Q and diag(Lambda); X = U diag(Lambda) (V^ Q)^T.
``opm_align=sign`` is the paper's literal rule (every component its own group: pairing by index), which
the rule above gives at g = 0. Pairing by index is ill posed where singular values are near-degenerate
(their vectors are defined only up to a rotation): measured on Fed-MA-mini it rotated the projector by
about its own norm per round. Fast path: one group and a square U make steps 2-5 exactly
X = (beta A_prev + (1 - beta) A~) A~^+ X~ with A = U diag(sigma) U^T (an EMA of the square root of the
clients' Gram matrix; U^ = U_prev, so delta = 0 and beta = beta_min). It stores A itself and its
eigenvalues (``eigvalsh``, a third of ``eigh``'s cost at 4096), and the basis U only when a later round
needs it (:meth:`Memory.basis`): a state and its eigendecomposition are the same OPM state.
Without CSC, :func:`ema_step` is the adaptive EMA on the fused operand itself.

``opm_delta=change`` (SPEC section 2, amended) measures the shift without a basis: delta = ||X~ - X_prev||_F /
||X_prev||_F, this round's fusion against the previous round's OPM output (the EMA's previous output without
CSC), passed to :func:`opm_step` as ``delta``; beta then adapts on the fast path too, where the basis
reading is inert (one group: U^ = U_prev, delta = 0, beta = beta_min in every round).
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional

import torch

from harness.methods.merging import cosine

ALIGN_RULES = ("subspace", "sign")
DELTA_RULES = ("basis", "change")


class Memory(NamedTuple):
    """OPM's state of one matrix: the spectrum and either the basis U or A = U diag(s) U^T."""
    s: torch.Tensor
    u: Optional[torch.Tensor] = None
    a: Optional[torch.Tensor] = None

    def basis(self):
        """(U, s), from the eigendecomposition of A when only A is stored (eigenvalues descending)."""
        if self.u is not None:
            return self.u, self.s
        evals, evecs = torch.linalg.eigh(self.a)
        return evecs.flip(1).contiguous(), evals.flip(0).clamp_min(0.0)

    def gram_root(self) -> torch.Tensor:
        return self.a if self.a is not None else (self.u * self.s) @ self.u.T


class OPMResult(NamedTuple):
    x: torch.Tensor          # the smoothed reconstruction of the matrix
    memory: Memory           # the state for the next round
    beta: float
    delta: float
    groups: int


# eigh squares the condition number: beyond this kappa(A)^2 the SVD is the accurate route
MAX_GRAM_CONDITION = 1e6


def polar(a: torch.Tensor) -> torch.Tensor:
    """The orthonormal polar factor of ``a`` (the closest matrix with orthonormal columns), computed as
    A (A^T A)^(-1/2) from eigh(A^T A) when A is well conditioned (about 1.6x cheaper than the SVD at
    4096x4096), else from the SVD."""
    a = a.contiguous()   # one memory layout, so a resumed run (loaded tensors) rounds bit-identically
    evals, evecs = torch.linalg.eigh(a.T @ a)
    if evals[0] > evals[-1] / MAX_GRAM_CONDITION:
        return a @ ((evecs * evals.rsqrt()) @ evecs.T)
    p, _, qh = torch.linalg.svd(a, full_matrices=False)
    return p @ qh


def adaptive_beta(delta: float, beta_min: float, beta_max: float, gamma: float) -> float:
    return float(min(max(beta_min + gamma * delta, beta_min), beta_max))


def relative_gaps(s: torch.Tensor) -> torch.Tensor:
    """rho_j = (s_j - s_{j+1}) / s_j for j < r, 0 where s_j = 0."""
    head = s[:-1]
    return torch.where(head > 0, (head - s[1:]) / torch.where(head > 0, head, torch.ones_like(head)),
                       torch.zeros_like(head))


def spectral_groups(s: torch.Tensor, s_prev: torch.Tensor, align: str, gap: float) -> List[range]:
    """Contiguous index ranges of near-degenerate components (``sign``: every component alone)."""
    r = s.numel()
    if align == "sign":
        return [range(j, j + 1) for j in range(r)]
    cuts = torch.minimum(relative_gaps(s), relative_gaps(s_prev)) >= gap
    edges = [0] + [j + 1 for j in torch.nonzero(cuts).flatten().tolist()] + [r]
    return [range(a, b) for a, b in zip(edges, edges[1:])]


def opm_step(prev: Memory, u, s, v, beta_min, beta_max, gamma, align: str = "subspace", gap: float = 0.1,
             fast: bool = True, delta: Optional[float] = None) -> OPMResult:
    """One round of OPM for one matrix: ``prev`` the stored state, (u, s, v) this round's fusion;
    ``delta`` given (``opm_delta=change``) replaces the basis shift in beta's rule."""
    # one memory layout (eigh returns column-major bases; a resumed run's are loaded row-major), so that
    # a resumed federation rounds exactly as an uninterrupted one
    u, v = u.contiguous(), v.contiguous()
    groups = spectral_groups(s, prev.s, align, gap)
    if fast and len(groups) == 1 and u.shape[0] == u.shape[1]:
        beta = beta_min if delta is None else adaptive_beta(delta, beta_min, beta_max, gamma)
        return _one_group_square(prev, u, s, v, beta, 0.0 if delta is None else delta)
    u_prev, s_prev = prev.basis()
    u_prev = u_prev.contiguous()
    rotated = [g for g in groups if len(g) > 1]
    u, v, s_hat = _align(u_prev, u, s, v, rotated)
    if delta is None:
        alive = (s_prev > 0) & (s > 0)
        shift = 1.0 - (u_prev * u).sum(0)        # columns are unit vectors
        delta = float(shift[alive].mean()) if alive.any() else 0.0
    beta = adaptive_beta(delta, beta_min, beta_max, gamma)
    u_new = polar(beta * u_prev + (1.0 - beta) * u)
    s_new = beta * s_prev + (1.0 - beta) * s     # the singletons' entries (all of them for the sign rule)
    for g, block in zip(rotated, s_hat):         # step 5: diagonalize each group's block of S
        evals, q = torch.linalg.eigh(beta * torch.diag(s_prev[g.start:g.stop]) + (1.0 - beta) * block)
        s_new[g.start:g.stop], q = evals.flip(0).clamp_min(0.0), q.flip(1)
        u_new[:, g.start:g.stop] = u_new[:, g.start:g.stop] @ q
        v[:, g.start:g.stop] = v[:, g.start:g.stop] @ q
    return OPMResult((u_new * s_new) @ v.T, Memory(s_new, u=u_new), beta, delta, len(groups))


def _align(u_prev, u, s, v, rotated):
    """(U^, V^, [S^_G for the groups of ``rotated``]): every column sign-aligned, then each group of
    several components rotated by Procrustes (which absorbs its columns' flips)."""
    flip = torch.where((u_prev * u).sum(0) < 0, -1.0, 1.0).to(u.dtype)
    u, v = u * flip, v * flip
    blocks = []
    for g in rotated:
        p, _, qh = torch.linalg.svd(u[:, g.start:g.stop].T @ u_prev[:, g.start:g.stop])
        rot = p @ qh
        u[:, g.start:g.stop] = u[:, g.start:g.stop] @ rot
        v[:, g.start:g.stop] = v[:, g.start:g.stop] @ rot
        blocks.append(rot.T @ torch.diag(s[g.start:g.stop]) @ rot)
    return u, v, blocks


def _one_group_square(prev: Memory, u, s, v, beta, delta) -> OPMResult:
    """X = (beta A_prev + (1 - beta) A~) A~^+ X~ with A~^+ X~ = U~ V~^T (V~ is zero on dead components)."""
    a = beta * prev.gram_root() + (1.0 - beta) * ((u * s) @ u.T)
    x = a @ (u @ v.T)
    return OPMResult(x, Memory(torch.linalg.eigvalsh(a).flip(0).clamp_min(0.0), a=a), beta, delta, 1)


def relative_change(after: torch.Tensor, before: torch.Tensor) -> float:
    """||after - before|| / ||before||: how far momentum moved this round's fusion (recorded)."""
    return float((after - before).norm() / before.norm().clamp_min(1e-300))


def ema_step(prev: torch.Tensor, current: torch.Tensor, beta_min, beta_max, gamma, rule: str = "basis"):
    """(beta prev + (1 - beta) current, beta, delta) with delta = 1 - cos(prev, current) (``change``:
    ||current - prev|| / ||prev||)."""
    delta = relative_change(current, prev) if rule == "change" else float(1.0 - cosine(prev, current))
    beta = adaptive_beta(delta, beta_min, beta_max, gamma)
    return beta * prev + (1.0 - beta) * current, beta, delta
