"""A study's numbers: per-run summaries from the records, and paired comparisons between arms.

Per run (each round and the final one): the held-out caption loss, the five judge-free mini benchmarks'
primary scores (percent; MME perception points), and the *benchmark index*, the mean over the five of
(score - chance) / (best possible - chance): 0 is chance, 1 a perfect score on all five. Oscillation
(Figure 4's claim that Fed-CMP's path is the smoothest): the sum of a curve's round-to-round drops
(of the index, of each score) and of the held-out loss's rises; 0 for a monotone path.

Paired comparisons: arm A against arm B on the same (setting, scenario, seed), i.e. the same data and
initialization; the mean difference with its 95% t interval, the two-sided paired t-test's p-value and
the number of pairs where A is better.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from harness.core.rundir import RunDir, timed_seconds
from harness.core.benchmarks import BENCHMARKS, FRACTION_METRICS, MINI_SCORED as SCORED
from harness.mini.bench import CHANCE
from harness.report.plot import trajectory
from harness.report.runs import load_run


def chance_of(bench: str) -> float:
    metric = SCORED[bench]
    value = CHANCE[(bench, metric)]
    return 100.0 * value if metric in FRACTION_METRICS else value


def normalized(bench: str, value: float) -> float:
    lo, hi = chance_of(bench), BENCHMARKS[bench].best
    return (value - lo) / (hi - lo)


@dataclass
class Summary:
    """One finished run, curves by round (1..T)."""
    loss: Dict[int, float]
    scores: Dict[str, Dict[int, float]]            # bench -> round -> score (percent / MME points)
    index: Dict[int, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def final(self, metric: str) -> Optional[float]:
        curve = self.curve(metric)
        return curve[max(curve)] if curve else None

    def curve(self, metric: str) -> Dict[int, float]:
        return {"loss": self.loss, "index": self.index}.get(metric) or self.scores.get(metric, {})

    def oscillation(self, metric: str) -> Optional[float]:
        """Sum of the curve's round-to-round moves in the wrong direction (loss up, scores down)."""
        curve = self.curve(metric)
        rounds = sorted(curve)
        if len(rounds) < 2:
            return None
        sign = 1.0 if metric == "loss" else -1.0
        return sum(max(0.0, sign * (curve[b] - curve[a])) for a, b in zip(rounds, rounds[1:]))


def summarize(run_dir) -> Summary:
    run = load_run(run_dir)
    scores = {}
    for bench, metric in SCORED.items():
        curve = trajectory(run, bench, metric)
        scores[bench] = {t: 100.0 * v if metric in FRACTION_METRICS else v for t, v in curve.items()}
    rounds = set.intersection(*(set(c) for c in scores.values())) if all(scores.values()) else set()
    index = {t: sum(normalized(b, scores[b][t]) for b in SCORED) / len(SCORED) for t in sorted(rounds)}
    wall = timed_seconds(RunDir(run_dir).timings) or 0.0
    return Summary(trajectory(run, "heldout", "caption_loss"), scores, index, wall)


@dataclass
class Paired:
    n: int
    mean: float               # mean of A - B
    low: float                # 95% t interval of the mean difference
    high: float
    p: float                  # two-sided paired t-test (0 for one constant nonzero difference, 1 for none)
    wins: int                 # pairs where A is better (lower loss / oscillation, higher scores)
    identical: bool           # every difference below 1e-9 (e.g. an exact identity)


def paired(a: List[float], b: List[float], higher_is_better: bool) -> Optional[Paired]:
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(pairs) < 2:
        return None
    from scipy import stats
    d = [x - y for x, y in pairs]
    n, mean = len(d), sum(d) / len(d)
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    if sd <= 1e-12 * max(1.0, abs(mean)):       # the same difference on every pair (up to rounding)
        p = 1.0 if abs(mean) < 1e-9 else 0.0
    else:
        p = float(stats.ttest_rel([x for x, _ in pairs], [y for _, y in pairs]).pvalue)
    wins = sum(1 for v in d if (v > 0 if higher_is_better else v < 0))
    return Paired(n, mean, mean - half, mean + half, p, wins, max(abs(v) for v in d) < 1e-9)


HIGHER_IS_BETTER = {"loss": False, "index": True, **{b: True for b in SCORED}}
