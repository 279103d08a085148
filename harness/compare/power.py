"""How many seeds a paired comparison needs: from the spread of its differences to a seed count.

For paired differences with standard deviation s (the seed-to-seed spread of method minus reference on
one scenario), a true mean difference delta is detected by a two-sided test at level alpha with power
1 - beta once n >= ((z_{1-alpha/2} + z_{1-beta}) s / delta)^2 (the normal approximation), and an exact
sign-flip test can only reach p = 2 / 2^n, so n must also satisfy 2 / 2^n < alpha. Under Holm over a
family of m comparisons the smallest p must clear alpha / m, so use alpha / m for the first line of
the family. Apply it to your own cluster: measure s with a few seeds, then size the study.
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import List, Optional, Sequence


def sign_flip_floor(alpha: float) -> int:
    """The fewest pairs for which an exact two-sided sign-flip test can give p < alpha (2 / 2^n < alpha)."""
    return math.floor(math.log2(2.0 / alpha)) + 1


def seeds_needed(sd: float, effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Pairs (seeds per scenario) to detect ``effect`` given the differences' SD ``sd``."""
    if effect <= 0:
        raise ValueError(f"effect={effect}: a positive difference to detect")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return max(sign_flip_floor(alpha), math.ceil((z * sd / effect) ** 2))


def within_sd(diffs: Sequence[float], strata: Optional[Sequence] = None) -> Optional[float]:
    """The SD of the differences around their stratum's mean (pooled over strata, ddof 1 per stratum)."""
    groups = {}
    for i, d in enumerate(diffs):
        groups.setdefault(None if strata is None else strata[i], []).append(d)
    ss = sum(sum((d - sum(g) / len(g)) ** 2 for d in g) for g in groups.values())
    dof = sum(len(g) - 1 for g in groups.values())
    return math.sqrt(ss / dof) if dof > 0 else None


def power_table(rows: List[tuple], effects: Sequence[float], alpha: float = 0.05, family: int = 1,
                power: float = 0.8) -> List[str]:
    """Markdown lines: per (label, sd), the seeds per scenario each effect needs, at alpha and at alpha /
    ``family`` (Holm's first step)."""
    head = " | ".join(f"δ = {e:g}" for e in effects)
    lines = [f"| comparison | SD of differences | {head} |", "|---|:-:|" + ":-:|" * len(effects)]
    for label, sd in rows:
        if sd is None:
            continue
        cells = [f"{seeds_needed(sd, e, alpha, power)} ({seeds_needed(sd, e, alpha / family, power)})"
                 for e in effects]
        lines.append(f"| {label} | {sd:.4g} | " + " | ".join(cells) + " |")
    return lines
