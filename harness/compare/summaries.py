"""One number per run from its per-round curve (SPEC section 7): the summaries ``fedma compare`` compares.

A curve is {round: value} over rounds 1..T of the global model (or the mean over clients for a method
that scores each client's model). With "better" meaning higher for scores and the benchmark index,
lower for a loss:
- ``final``: the value at round T;
- ``auc``: the mean over rounds 1..T (the area under the curve per round; rewards learning early and
  staying there, so a method cannot win by the size of its last step alone);
- ``best``: the best value over the rounds;
- ``to_threshold``: the first round whose value reaches ``threshold`` (>= for scores, <= for a loss);
  T + 1 if none does (lower is better);
- ``oscillation``: the sum of the curve's round-to-round moves in the wrong direction (a loss's rises,
  a score's drops); 0 for a monotone path (lower is better; Figure 4's smoothness claim).
"""
from __future__ import annotations

from typing import Dict, Optional

SUMMARIES = ("final", "auc", "best", "to_threshold", "oscillation")
# summaries where lower is better whatever the metric's direction
LOWER_IS_BETTER = {"to_threshold", "oscillation"}


def summarize(curve: Dict[int, float], summary: str, higher_is_better: bool,
              threshold: Optional[float] = None, rounds: Optional[int] = None) -> Optional[float]:
    """The summary of ``curve``; None when the curve is empty. ``rounds``: T (default: the last round)."""
    if summary not in SUMMARIES:
        from harness.core.typecheck import bad_choice
        raise bad_choice("summary", summary, SUMMARIES)
    points = sorted((int(t), float(v)) for t, v in curve.items() if v is not None)
    if not points:
        return None
    values = [v for _, v in points]
    if summary == "final":
        return values[-1]
    if summary == "auc":
        return sum(values) / len(values)
    if summary == "best":
        return max(values) if higher_is_better else min(values)
    if summary == "oscillation":
        sign = -1.0 if higher_is_better else 1.0
        return sum(max(0.0, sign * (b - a)) for a, b in zip(values, values[1:]))
    if threshold is None:
        raise ValueError("summary to_threshold needs a threshold")
    last = rounds if rounds is not None else points[-1][0]
    reached = (v >= threshold if higher_is_better else v <= threshold for _, v in points)
    return float(next((t for (t, _), ok in zip(points, reached) if ok), last + 1))


def summary_higher_is_better(summary: str, metric_higher_is_better: bool) -> bool:
    """Which direction of the summary is better (rounds to a threshold and oscillation: fewer)."""
    return False if summary in LOWER_IS_BETTER else metric_higher_is_better


def default_threshold(reference_finals, higher_is_better: bool, fraction: float = 0.95) -> float:
    """95% of the reference's mean final value: ``fraction`` x it for a score, it / ``fraction`` for a loss
    (within 5% of where the reference ends, from its side)."""
    finals = [v for v in reference_finals if v is not None]
    if not finals:
        raise ValueError("to_threshold: the reference has no final value to take a threshold from")
    mean = sum(finals) / len(finals)
    return fraction * mean if higher_is_better else mean / fraction
