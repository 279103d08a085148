"""Tensor helpers shared by several server rules (weighted means, TIES pieces, cosine).

All functions take and return float64 tensors and never modify their inputs.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch

F64 = torch.float64


class WeightedSum:
    """sum_k w_k x_k, fed one term at a time (``add``), so a caller can stream the clients."""

    def __init__(self):
        self.total = None

    def add(self, x: torch.Tensor, w: float) -> None:
        term = x.to(F64) * float(w)
        self.total = term if self.total is None else self.total.add_(term)

    def value(self) -> torch.Tensor:
        if self.total is None:
            raise ValueError("weighted_sum: no tensors")
        return self.total


def weighted_sum(tensors: Iterable[torch.Tensor], weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """sum_k w_k x_k, accumulated one tensor at a time (memory independent of K)."""
    acc = WeightedSum()
    for w, x in zip(weights, tensors):
        acc.add(x, w)
    return acc.value()


# top bits of a float64 that bucket the magnitudes: sign (0), 11 exponent bits and 4 mantissa bits, so
# a bucket spans 1/16 of a binade and holds a few percent of a bell-shaped tensor's entries
BUCKET_SHIFT = 48


def kth_largest(mag: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th largest entry (1 <= k <= numel) of a flat float64 tensor of non-negative, finite
    values, exactly: their bit patterns order as the values do, so one histogram of the top bits finds
    the bucket holding it and a selection among that bucket's few entries the value. The same value
    as ``torch.kthvalue(mag, numel - k + 1)`` without selecting over every entry."""
    if mag.dtype != F64:
        return torch.kthvalue(mag, mag.numel() - k + 1).values
    bucket = mag.view(torch.int64) >> BUCKET_SHIFT
    counts = torch.bincount(bucket, minlength=1 << (63 - BUCKET_SHIFT))
    from_top = counts.flip(0).cumsum(0)
    top_index = int(torch.searchsorted(from_top, k))          # first bucket from the top reaching k
    above = int(from_top[top_index - 1]) if top_index else 0
    candidates = mag[bucket == counts.numel() - 1 - top_index]
    return torch.kthvalue(candidates, candidates.numel() - (k - above) + 1).values


def trim_top_magnitude(x: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the top ``density`` fraction of entries by |x|, zero the rest; k = round(density * numel),
    but at least 1 for density > 0 (mergekit refuses k = 0 outright; a 4096-entry bias at a small
    density would otherwise contribute nothing).

    Ties at the threshold are broken by position (the first ones in row-major order survive), so
    exactly k entries survive. The threshold comes from a selection (:func:`kth_largest`), not a
    full sort.
    """
    k = max(1, int(round(density * x.numel()))) if density > 0 else 0
    if k >= x.numel():
        return x.clone()
    flat = x.reshape(-1)
    mag = flat.abs()
    if k == 0:
        return torch.zeros_like(x)
    threshold = kth_largest(mag, k)
    above = mag > threshold
    at = torch.nonzero(mag == threshold).reshape(-1)[: k - int(above.sum())]
    keep = above.index_fill(0, at, True)
    return torch.where(keep, flat, torch.zeros_like(flat)).reshape(x.shape)


def elect_sign(trimmed: Iterable[torch.Tensor], weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """sign(sum_k w_k t_k): TIES' sign election by total (weighted) mass."""
    return torch.sign(weighted_sum(trimmed, weights))


class DisjointMean:
    """Per coordinate, the w-weighted mean over the terms whose non-zero value agrees with ``sign``,
    fed one term at a time (``add``)."""

    def __init__(self, sign: torch.Tensor):
        self.sign = sign
        self.num = torch.zeros_like(sign, dtype=F64)
        self.den = torch.zeros_like(sign, dtype=F64)

    def add(self, t: torch.Tensor, w: float) -> None:
        agree = (torch.sign(t) == self.sign) & (t != 0)
        self.num += torch.where(agree, t.to(F64) * float(w), 0.0)
        self.den += agree.to(F64) * float(w)

    def value(self) -> torch.Tensor:
        return torch.where(self.den > 0, self.num / self.den.clamp_min(torch.finfo(F64).tiny), 0.0)


def disjoint_mean(trimmed: Iterable[torch.Tensor], sign: torch.Tensor,
                  weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Per coordinate, the w-weighted mean over the clients whose non-zero value agrees with ``sign``."""
    acc = DisjointMean(sign)
    for w, t in zip(weights, trimmed):
        acc.add(t, w)
    return acc.value()


def ties_merge(tensors: Sequence[torch.Tensor], density: float,
               weights: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """TIES-Merging (Yadav et al. 2023): trim, elect sign, disjoint mean; uniform weights by default."""
    if weights is None:
        weights = [1.0] * len(tensors)
    trimmed = [trim_top_magnitude(t.to(F64), density) for t in tensors]
    return disjoint_mean(trimmed, elect_sign(trimmed, weights), weights)


def ties_merge_streamed(tensors: Callable[[], Iterable[torch.Tensor]], density: float,
                        weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """:func:`ties_merge` over a fresh iterator per pass (``tensors()``): one pass elects the sign,
    a second forms the disjoint mean, each holding one tensor at a time, so memory does not grow
    with K; the tensors are produced (and trimmed) twice. Same operations in the same order as
    :func:`ties_merge`, hence the same result bit for bit."""
    def trimmed():
        return (trim_top_magnitude(t.to(F64), density) for t in tensors())
    return disjoint_mean(trimmed(), elect_sign(trimmed(), weights), weights)


def cosine(a: torch.Tensor, b: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Cosine similarity of flattened tensors (or along ``dim``); 1 where either is zero-length."""
    if dim is None:
        a, b, dim = a.reshape(-1), b.reshape(-1), 0
    num = (a * b).sum(dim)
    den = a.norm(dim=dim) * b.norm(dim=dim)
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(a.dtype).tiny), torch.ones_like(num))
