"""A study's tuning stage (``fedma study CONFIG --tune``): ``fedma tune`` on the study's own worlds.

The config's ``tuning:`` section names the methods, the number of trials each, the tuning seeds (never the
study's evaluation seeds: refused otherwise), and the setting and scenario tuned on. Every trial runs with
the study's rounds and that setting's client overrides on that seed's world (built as the study builds
its worlds), benchmarks off, scored on the mini world's validation rows. Output: ``OUT/tune`` (trials,
``tuned.yaml``, ``tune.md``, ``tune.json``); the plan's aliases then carry the chosen values.
"""
from __future__ import annotations

from pathlib import Path

from harness.core.errors import ConfigError


def evaluation_seeds(cfg) -> set:
    return {s for b in cfg.blocks for s in (b.seeds or cfg.seeds)}


def tuning_config(cfg):
    """The TuneConfig of the study's ``tuning:`` section, on the study's worlds."""
    from harness.study.runner import RunSpec, overrides, world_roots
    from harness.study.spec import arm
    from harness.tune.runner import TuneConfig
    t = cfg.tuning
    missing = {"methods", "trials", "seeds"} - set(t)
    if missing:
        raise ConfigError(f"tuning: needs {sorted(missing)} (and optionally setting, scenario, batch)")
    overlap = set(t["seeds"]) & evaluation_seeds(cfg)
    if overlap:
        raise ConfigError(f"tuning.seeds {sorted(overlap)} are evaluation seeds of the study; tune on others")
    setting, scenario = t.get("setting", "base"), t.get("scenario", "ii")
    specs = [RunSpec(setting, scenario, s, arm("fedavg")) for s in t["seeds"]]
    roots = world_roots(cfg, specs)
    # the setting's client overrides and the study's rounds; method, seed, root and eval are the tuner's
    common = [o for o in overrides(cfg, specs[0], roots[(setting, scenario, specs[0].seed)], [])
              if not o.startswith(("method=", "aggregator.", "federation.seed=", "data.root="))]
    return TuneConfig("mini", list(t["methods"]), list(t["seeds"]), int(t["trials"]), common, scenario,
                      int(t.get("batch", 2)), int(t.get("sampler_seed", 0)),
                      roots={s: str(roots[(setting, scenario, s)]) for s in t["seeds"]})


def run_tuning(cfg, out, workers: int, console) -> dict:
    from harness.tune.runner import local_executor, tune
    tcfg = tuning_config(cfg)
    return tune(tcfg, Path(out) / "tune", local_executor(tcfg.config, workers, console), console)
