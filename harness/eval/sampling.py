"""The question-sampling standard error of one benchmark score, from its value and question count n.

A benchmark is a sample of questions; the same model on another sample of the same size would score
differently. For a score on the percent scale that is an accuracy over n questions (POPE, SEED, MMVP,
MMBench, GQA, OCRVQA), the binomial standard error 100 sqrt(p (1 - p) / n) with p = value / 100.

MME's perception score is a sum over C categories (C = best / 200) of acc + acc+ in percent, where acc is
over the category's n_c = n / C questions and acc+ over its n_c / 2 images (both of an image's two
questions right). With independent questions of one accuracy q per category (s_c = score / C = 100 (q + q^2)
in expectation, so q = (sqrt(1 + 4 s_c / 100) - 1) / 2):
    Var(acc_c) = q (1 - q) / n_c,   Var(acc+_c) = q^2 (1 - q^2) / (n_c / 2),   Cov = 2 q^2 (1 - q) / n_c
    SE = 100 sqrt(C (q (1 - q) + 2 q^2 (1 - q^2) + 4 q^2 (1 - q)) / n_c).
(checked against a simulation of such a set in tests/unit/test_compare_stats.py). Questions about one
image are not independent in general, so read it as the order of the noise, not an exact figure.
The mini world's benchmark index averages five normalized scores; its SE follows by propagation.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional

from harness.core.benchmarks import BENCHMARKS


def sampling_se(bench: str, value: Optional[float], n: int) -> Optional[float]:
    """The standard error of ``bench``'s primary score ``value`` (percent scale, MME in points) over ``n``
    questions; None when the value or n is missing."""
    if value is None or not n or n <= 0:
        return None
    spec = BENCHMARKS[bench]
    if bench == "mme":
        return _mme_se(value, n, categories=round(spec.best / 200.0))
    p = min(1.0, max(0.0, value / 100.0))
    return 100.0 * math.sqrt(p * (1.0 - p) / n)


def _mme_se(score: float, n: int, categories: int) -> float:
    per_category = min(200.0, max(0.0, score / categories))
    q = (math.sqrt(1.0 + 4.0 * per_category / 100.0) - 1.0) / 2.0
    n_c = n / categories
    var = q * (1 - q) + 2 * q * q * (1 - q * q) + 4 * q * q * (1 - q)
    return 100.0 * math.sqrt(categories * var / n_c)


def index_se(ses: Mapping[str, Optional[float]], span: Mapping[str, float]) -> Optional[float]:
    """SE of the mean over benchmarks of (score - chance) / (best - chance): ``span`` is best - chance."""
    if not ses or any(v is None for v in ses.values()):
        return None
    return math.sqrt(sum((se / span[b]) ** 2 for b, se in ses.items())) / len(ses)
