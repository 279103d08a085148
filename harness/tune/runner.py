"""``fedma tune``: the same number of trials for every method, on tuning seeds, scored on validation rows.

A trial is a point of the method's declared space (:attr:`Aggregator.tunable`); it runs one federation
per tuning seed with the benchmarks off and ``eval.validation`` set, and its objective is the AUC over
rounds of the validation caption loss (mean over rounds 1..T), averaged over the tuning seeds (lower
is better). Validation rows are neither the reported held-out set nor any benchmark's questions; the
tuning seeds must not be the evaluation seeds (a study checks it).

Runs live in a sweep layout, ``OUT/runs/<method>/<SCENARIO>/<method>+trialNNN/seedS``, so ``fedma
compare``/``tables`` read them; batches run locally (worker processes) or as Slurm job arrays through
``fedma sweep``'s launcher, and a finished run is never run again. Outputs: ``OUT/trials.jsonl`` (the
record), ``trials.csv``, ``tuned.yaml`` (``extends:`` the tuned config, each method's best point under
``aggregator.hparams``: a sweep or study extends it), ``tune.md`` and ``tune.json`` (settings, machine,
code version and wall time of every invocation).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from harness.core.rundir import RunDir
from harness.tune.trials import Trial, append_trial, ask, best_trials, read_trials


@dataclass
class TuneConfig:
    config: str                            # the tuned config (a preset name or YAML path)
    methods: List[str]
    seeds: List[int]                       # tuning seeds (never the evaluation seeds)
    trials: int = 12                       # per method (a method with nothing to tune: its defaults, once)
    overrides: List[str] = field(default_factory=list)   # applied to every run (and kept in tuned.yaml)
    scenario: str = "ii"
    batch: int = 2                         # trials asked (and run) at once
    seed: int = 0                          # the sampler's seed
    validation: Optional[str] = None       # validation rows (None: the preset's own, e.g. the mini world's)
    roots: Dict[int, str] = field(default_factory=dict)   # per tuning seed, its data root (a study's worlds)


Execute = Callable[[str, Dict[str, List[str]], List[Trial]], None]   # (method, {run_dir: overrides}, trials)


def run_dir(out: Path, cfg: TuneConfig, method: str, trial: Trial, seed: int) -> Path:
    return out / "runs" / method / cfg.scenario / f"{method}+{trial.name}" / f"seed{seed}"


def tune(cfg: TuneConfig, out, execute: Execute, console=None) -> Dict[str, Trial]:
    """Run every method's missing trials; returns {method: its best finished trial}."""
    from harness.core.registry import build_aggregator, method_class
    from harness.tune.outputs import record_invocation, write_outputs
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record, began = out / "trials.jsonl", time.time()
    base = base_overrides(cfg)
    for method in cfg.methods:
        space, defaults = method_class(method).tunable, build_aggregator(method).hparams()
        budget = cfg.trials if space else 1
        while True:
            history = [t for (m, _), t in sorted(read_trials(record).items()) if m == method]
            pending = [t for t in history if t.state == "running"]
            todo = pending or ask(method, space, defaults, history, min(cfg.batch, budget - len(history)), cfg.seed)
            if not todo:
                break
            for t in ([] if pending else todo):
                append_trial(record, t)
            _run_batch(cfg, out, method, todo, base, execute, record, console)
        write_outputs(cfg, out)
    trials = read_trials(record)
    record_invocation(cfg, out, began, len(trials))
    return best_trials(trials.values())


def base_overrides(cfg: TuneConfig) -> List[str]:
    """What every tuning run adds to the user's overrides: no benchmarks, the validation rows."""
    validation = cfg.validation
    if validation is None:
        from harness.core.config import load_config
        from harness.core.presets import preset, resolve
        name = load_config(cfg.config, cfg.overrides).model.preset
        if preset(name).validation is None:
            from harness.core.errors import ConfigError
            raise ConfigError(f"fedma tune scores validation rows and model.preset={name} has none: give "
                              f"--validation DIR (a shard directory of image-caption pairs held out from "
                              f"training, held-out and benchmark sets)")
        validation = str(resolve(preset(name).validation)())
    return [*cfg.overrides, "eval.tasks=[]", "eval.final_tasks=[]", f"eval.validation={validation}",
            f"data.scenario={cfg.scenario}"]


def _run_batch(cfg, out, method, trials, base, execute, record, console) -> None:
    jobs = {}
    for t in trials:
        for seed in cfg.seeds:
            hp = [f"aggregator.{method}.{k}={v}" for k, v in t.params.items()]
            root = [f"data.root={cfg.roots[seed]}"] if seed in cfg.roots else []
            jobs[str(run_dir(out, cfg, method, t, seed))] = [*base, *root, f"method={method}",
                                                             f"federation.seed={seed}", *hp]
    began = time.time()
    execute(method, jobs, trials)
    seconds = (time.time() - began) / max(1, len(trials))
    for t in trials:
        scored = score(out, cfg, method, t)
        done = len(scored) == len(cfg.seeds) and all(v is not None for v in scored.values())
        append_trial(record, Trial(method, t.number, t.params, "complete" if done else "fail",
                                   sum(scored.values()) / len(scored) if done else None,
                                   {k: v for k, v in scored.items() if v is not None}, round(seconds, 1)))
        if console:
            console.print(f"{method} {t.name} {t.params}: " + (f"{sum(scored.values()) / len(scored):.5f}" if done
                                                                else "failed"), markup=False)


def score(out: Path, cfg: TuneConfig, method: str, trial: Trial) -> Dict[str, Optional[float]]:
    """{seed: AUC of the validation loss} of a trial's finished runs (None: no finished run or no value)."""
    from harness.compare.observations import from_run_dir
    from harness.core.errors import DataError
    out_values = {}
    for seed in cfg.seeds:
        d = run_dir(out, cfg, method, trial, seed)
        if not RunDir(d).final.is_dir():
            out_values[str(seed)] = None
            continue
        try:
            out_values[str(seed)] = from_run_dir(d, d.parent).value("validation", "auc")
        except DataError:
            out_values[str(seed)] = None
    return out_values


def local_executor(config: str, workers: int, console):
    """Run a batch's jobs in ``workers`` one-thread processes here (as ``fedma demo`` and ``study`` do)."""
    from harness.mini.workers import build_deepspeed_ops, run_all
    build_deepspeed_ops()

    def execute(method, jobs, trials):
        todo = {d: o for d, o in jobs.items() if not RunDir(d).has_final()}
        if todo:
            run_all(todo, workers, console, name=lambda d: "/".join(Path(d).parts[-2:]), preset=config)
    return execute
