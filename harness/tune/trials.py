"""The trial record of a tuning run and the next trials to ask, from that record alone.

``OUT/trials.jsonl`` is the source of truth: one line per trial state change ({"method", "number",
"params", "state": running|complete|fail, "value", "per_seed"}), the last line of a trial wins. Each
batch is asked of an Optuna study rebuilt from the finished trials of that method, with a TPE sampler
seeded by (seed, method, number of finished trials), so the same history gives the same next trials:
a stopped tuning run continues where it stopped, and a rerun from scratch proposes the same points.
Trial 0 of every method is its defaults (so the tuned value is never worse on the tuning seeds).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from harness.methods.space import Space, distributions, suggest


@dataclass
class Trial:
    method: str
    number: int
    params: dict
    state: str = "running"            # running | complete | fail
    value: Optional[float] = None     # the objective (lower is better): mean over the tuning seeds
    per_seed: Dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"trial{self.number:03d}"


def read_trials(path: Path) -> Dict[tuple, Trial]:
    """{(method, number): its latest state}."""
    out: Dict[tuple, Trial] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                t = Trial(**json.loads(line))
                out[(t.method, t.number)] = t
    return out


def append_trial(path: Path, trial: Trial) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(asdict(trial), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def ask(method: str, space: Space, defaults: dict, history: List[Trial], count: int, seed: int) -> List[Trial]:
    """The next ``count`` trials of ``method`` after ``history`` (its trials, any state)."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = len(history)
    if not space:                     # nothing to tune: the defaults once
        return [Trial(method, start, {})] if start == 0 and count else []
    finished = [t for t in history if t.state in ("complete", "fail")]
    sampler = optuna.samplers.TPESampler(seed=_seed(seed, method, len(finished)), constant_liar=True,
                                         n_startup_trials=5)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    for t in finished:
        state = optuna.trial.TrialState.COMPLETE if t.state == "complete" else optuna.trial.TrialState.FAIL
        study.add_trial(optuna.trial.create_trial(params=t.params, distributions=distributions(space, t.params),
                                                  value=t.value if t.state == "complete" else None, state=state))
    out = []
    for number in range(start, start + count):
        if number == 0:
            out.append(Trial(method, 0, {k: defaults[k] for k in space}))
            continue
        trial = study.ask()
        out.append(Trial(method, number, suggest(trial, space)))
    return out


def _seed(seed: int, method: str, finished: int) -> int:
    digest = hashlib.sha256(f"{seed}/{method}/{finished}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def best_trials(trials) -> Dict[str, Trial]:
    best: Dict[str, Trial] = {}
    for t in trials:
        if t.state == "complete" and (t.method not in best or t.value < best[t.method].value):
            best[t.method] = t
    return best
