"""Search spaces: what a method declares worth tuning (its ``tunable`` on the spec) and their ranges.

Each method's spec (:class:`harness.methods.aggregator.Aggregator` subclass) names the hyperparameters that
move its effective server step or its client term, with a range a tuner samples from, so every method
gets the same tuning budget over its own knobs (``fedma tune``). A range's low end may name an earlier
hyperparameter of the same space (Fed-CMP's beta_max >= beta_min).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Tuple, Union


@dataclass(frozen=True)
class Range:
    low: Union[float, str]        # a number, or the name of an earlier hyperparameter in the space
    high: float
    log: bool = False             # sample on a log scale (step sizes, penalty weights)
    integer: bool = False

    def bounds(self, chosen: Mapping[str, object]) -> Tuple[float, float]:
        low = chosen[self.low] if isinstance(self.low, str) else self.low
        return float(low), float(self.high)


@dataclass(frozen=True)
class Choice:
    options: tuple


Space = Dict[str, Union[Range, Choice]]


def suggest(trial, space: Space) -> dict:
    """One point of ``space`` from an Optuna trial (define-by-run, in the space's order)."""
    chosen: dict = {}
    for name, dim in space.items():
        if isinstance(dim, Choice):
            chosen[name] = trial.suggest_categorical(name, list(dim.options))
        elif dim.integer:
            low, high = dim.bounds(chosen)
            chosen[name] = trial.suggest_int(name, int(low), int(high), log=dim.log)
        else:
            low, high = dim.bounds(chosen)
            chosen[name] = trial.suggest_float(name, low, high, log=dim.log)
    return chosen


def distributions(space: Space, point: Mapping[str, object]) -> dict:
    """The Optuna distributions a finished trial at ``point`` was drawn from (to replay it)."""
    import optuna.distributions as od
    out = {}
    for name, dim in space.items():
        if isinstance(dim, Choice):
            out[name] = od.CategoricalDistribution(list(dim.options))
        else:
            low, high = dim.bounds(point)
            cls = od.IntDistribution if dim.integer else od.FloatDistribution
            out[name] = cls(int(low) if dim.integer else low, int(high) if dim.integer else high, log=dim.log)
    return out


def describe(space: Space) -> str:
    """``server_lr in [0.25, 4] (log); ...`` for tables and --help."""
    parts = []
    for name, dim in space.items():
        if isinstance(dim, Choice):
            parts.append(f"{name} in {{{', '.join(map(str, dim.options))}}}")
        else:
            parts.append(f"{name} in [{dim.low}, {dim.high:g}]" + (" (log)" if dim.log else ""))
    return "; ".join(parts) or "nothing to tune"
