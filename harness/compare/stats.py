"""The statistics of ``fedma compare`` (SPEC section 7), fixed so that any two implementations agree.

For paired differences d_1..d_n (method minus reference on the same scenario, seed and setting):
- ``sign_flip_p``: the exact two-sided sign-flip permutation p,
  #{s in {+1,-1}^n : |mean(s d)| >= |mean(d)| - 1e-12} / 2^n (the identity pattern included), for
  n <= 20; beyond, a Monte Carlo estimate over 100,000 seeded sign patterns, (hits + 1) / (draws + 1).
  With n pairs it can never go below 2 / 2^n (n = 3: 0.25; n = 6: 0.031; n = 10: 0.002).
- ``bootstrap_interval``: the 95% percentile bootstrap interval of mean(d), 10,000 seeded resamples
  of the pairs (``strata``: resampled within each stratum, the scenarios of a pooled row, keeping
  each stratum's size), percentiles by linear interpolation (numpy's default).
- ``holm`` and ``benjamini_hochberg``: family-wise (Holm 1979) and false-discovery-rate (Benjamini and
  Hochberg 1995) adjusted p over one family, with p sorted ascending and m the family's size:
  Holm p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)); BH p~_(i) = min_{j >= i} min(1, m p_(j) / j).
- ``verdict``: "holds" when the Holm-adjusted p < 0.05 and mean(d) is in the claimed direction, "does not
  hold" when it is < 0.05 the other way or every d_i is 0, otherwise "cannot tell".
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

EXACT_MAX_N = 20
MC_DRAWS = 100_000
BOOTSTRAP_RESAMPLES = 10_000
SEED = 0
ALPHA = 0.05
TOL = 1e-12


def sign_flip_p(d: Sequence[float], draws: int = MC_DRAWS, seed: int = SEED) -> float:
    """Two-sided sign-flip permutation p of mean(d) (exact up to n = 20 pairs, else Monte Carlo)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    if n == 0:
        raise ValueError("sign_flip_p: no pairs")
    observed = abs(d.mean()) - TOL
    if n <= EXACT_MAX_N:
        return _exact_hits(d, observed) / 2.0 ** n
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, draws, 10_000):
        signs = rng.integers(0, 2, size=(min(10_000, draws - start), n)) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) / n >= observed))
    return (hits + 1) / (draws + 1)


def _exact_hits(d: np.ndarray, observed: float) -> int:
    """How many of the 2^n sign patterns give |mean(s d)| >= observed, enumerated in blocks."""
    n = d.size
    low = min(n, 12)                         # the last `low` signs enumerated as one matrix
    bits = (np.arange(2 ** low)[:, None] >> np.arange(low)) & 1
    low_sums = (1 - 2 * bits) @ d[n - low:]
    hits = 0
    for high in range(2 ** (n - low)):
        signs = 1 - 2 * ((high >> np.arange(n - low)) & 1)
        total = low_sums + float(signs @ d[:n - low])
        hits += int(np.count_nonzero(np.abs(total) / n >= observed))
    return hits


def bootstrap_interval(d: Sequence[float], strata: Optional[Sequence] = None, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = SEED, level: float = 0.95) -> tuple:
    """(low, high): the percentile bootstrap interval of mean(d), resampled within ``strata`` if given."""
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        raise ValueError("bootstrap_interval: no pairs")
    groups = [np.arange(d.size)] if strata is None else \
        [np.flatnonzero(np.asarray(strata, dtype=object) == s) for s in dict.fromkeys(strata)]
    rng = np.random.default_rng(seed)
    sums = np.zeros(resamples)
    for idx in groups:
        picks = rng.integers(0, idx.size, size=(resamples, idx.size))
        sums += d[idx][picks].sum(axis=1)
    means = sums / d.size
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def holm(p: Sequence[float]) -> list:
    """Holm's step-down family-wise adjusted p, in the input order."""
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size
    steps = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(steps)
    return adjusted.tolist()


def benjamini_hochberg(p: Sequence[float]) -> list:
    """Benjamini-Hochberg's step-up false-discovery-rate adjusted p, in the input order."""
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size
    steps = np.minimum(1.0, m * p[order] / np.arange(1, m + 1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum.accumulate(steps[::-1])[::-1]
    return adjusted.tolist()


def verdict(d: Sequence[float], p_adjusted: float, higher_is_better: bool, alpha: float = ALPHA) -> str:
    """holds / does not hold / cannot tell, on the adjusted p and the direction of mean(d)."""
    d = np.asarray(d, dtype=np.float64)
    if np.all(d == 0):
        return "does not hold"
    if p_adjusted < alpha:
        return "holds" if (d.mean() > 0) == higher_is_better else "does not hold"
    return "cannot tell"


def better_worse(d: Sequence[float], higher_is_better: bool) -> tuple:
    """(pairs where the method is better, pairs where it is worse); ties count as neither."""
    d = np.asarray(d, dtype=np.float64)
    up, down = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d < 0))
    return (up, down) if higher_is_better else (down, up)
