"""``fedma tune``'s trial logic: defaults first, equal budgets, determinism from the record, resume."""
import pytest
import yaml

from harness.methods.space import Choice, Range, suggest
from harness.tune.outputs import tuned_yaml
from harness.tune.runner import TuneConfig, tune
from harness.tune.trials import Trial, ask, best_trials, read_trials

pytestmark = pytest.mark.unit


def quadratic(params: dict) -> float:
    """A known objective with its minimum at server_lr = 2 (log scale) and scale = 0.4."""
    import math
    return (math.log(params.get("server_lr", 1.0) / 2.0)) ** 2 + (params.get("scale", 0.3) - 0.4) ** 2


def synthetic_executor(out, calls):
    """Writes what a finished run leaves (final/ and a validation curve whose AUC is the objective), so the
    runner's own scoring reads it from records.jsonl like a real run's."""
    import json
    from pathlib import Path

    def execute(method, jobs, trials):
        calls.append((method, [t.number for t in trials]))
        for run_dir, overrides in jobs.items():
            params = {o.split("=")[0].split(".")[-1]: float(o.split("=")[1]) for o in overrides
                      if o.startswith(f"aggregator.{method}.")}
            d = Path(run_dir)
            (d / "final").mkdir(parents=True)
            rec = {"run_id": "r", "method": method, "scenario": "ii", "seed": 1, "round": 1, "client": "global",
                   "benchmark": "validation", "metric": "caption_loss", "value": quadratic(params), "n": 10}
            (d / "records.jsonl").write_text(json.dumps(rec) + "\n")
    return execute


def config(**kw):
    return TuneConfig("mini", kw.pop("methods", ["fedavg", "fedavg_ta", "local"]), [1000], trials=kw.pop("trials", 6),
                      validation="/nonexistent", batch=kw.pop("batch", 2))


def test_every_method_gets_the_same_budget_and_trial_zero_is_its_defaults(tmp_path):
    calls = []
    best = tune(config(), tmp_path, synthetic_executor(tmp_path, calls))
    trials = read_trials(tmp_path / "trials.jsonl")
    per_method = {m: sorted(n for (mm, n) in trials if mm == m) for m in ("fedavg", "fedavg_ta", "local")}
    assert per_method == {"fedavg": list(range(6)), "fedavg_ta": list(range(6)), "local": [0]}
    assert trials[("fedavg", 0)].params == {"server_lr": 1.0} and trials[("fedavg_ta", 0)].params == {"scale": 0.3}
    assert all(t.state == "complete" for t in trials.values())
    # batches of 2: fedavg ran as [0, 1], [2, 3], [4, 5]
    assert calls[:3] == [("fedavg", [0, 1]), ("fedavg", [2, 3]), ("fedavg", [4, 5])]
    # the best is the lowest objective among the trials, never worse than the defaults
    assert best["fedavg"].value == min(t.value for (m, _), t in trials.items() if m == "fedavg")
    assert best["fedavg"].value <= quadratic({"server_lr": 1.0})


def test_same_record_same_next_trials_and_a_rerun_runs_nothing(tmp_path):
    calls = []
    tune(config(methods=["fedavg"]), tmp_path / "a", synthetic_executor(tmp_path, calls))
    tune(config(methods=["fedavg"]), tmp_path / "b", synthetic_executor(tmp_path, []))
    a, b = read_trials(tmp_path / "a" / "trials.jsonl"), read_trials(tmp_path / "b" / "trials.jsonl")
    assert {k: t.params for k, t in a.items()} == {k: t.params for k, t in b.items()}
    before = len(calls)
    tune(config(methods=["fedavg"]), tmp_path / "a", synthetic_executor(tmp_path, calls))
    assert len(calls) == before                       # all six finished: nothing to run


def test_an_interrupted_batch_is_run_again_with_the_same_points(tmp_path):
    """A trial left 'running' (the process died mid-batch) is rerun first, with its recorded point."""
    from harness.tune.trials import append_trial
    append_trial(tmp_path / "trials.jsonl", Trial("fedavg", 0, {"server_lr": 1.0}))
    append_trial(tmp_path / "trials.jsonl", Trial("fedavg", 1, {"server_lr": 3.0}))
    calls = []
    tune(config(methods=["fedavg"], trials=2), tmp_path, synthetic_executor(tmp_path, calls))
    assert calls == [("fedavg", [0, 1])]
    assert read_trials(tmp_path / "trials.jsonl")[("fedavg", 1)].value == pytest.approx(quadratic({"server_lr": 3.0}))


def test_ask_follows_the_space_and_its_dependent_bounds():
    space = {"beta_min": Range(0.0, 0.9), "beta_max": Range("beta_min", 0.99), "lam": Range(0.1, 10.0, log=True)}
    trials = ask("fedcmp", space, {"beta_min": 0.5, "beta_max": 0.9, "lam": 1.0}, [], 8, seed=0)
    assert trials[0].params == {"beta_min": 0.5, "beta_max": 0.9, "lam": 1.0}
    for t in trials[1:]:
        p = t.params
        assert 0.0 <= p["beta_min"] <= p["beta_max"] <= 0.99 and 0.1 <= p["lam"] <= 10.0


def test_suggest_choice():
    import optuna
    trial = optuna.create_study().ask()
    assert suggest(trial, {"rwf": Choice(("full", "none"))})["rwf"] in ("full", "none")


def test_tuned_yaml_extends_the_config_with_each_best_point(tmp_path):
    from harness.core.config import load_config
    cfg = TuneConfig("mini", ["fedavg", "fedavg_ta"], [1000], overrides=["client.lr=0.004"])
    best = best_trials([Trial("fedavg", 3, {"server_lr": 1.7}, "complete", 0.2),
                        Trial("fedavg", 4, {"server_lr": 0.5}, "complete", 0.3),
                        Trial("fedavg_ta", 2, {"scale": 0.6}, "complete", 0.25)])
    path = tmp_path / "tuned.yaml"
    path.write_text(tuned_yaml(cfg, best))
    assert yaml.safe_load(path.read_text())["extends"] == "mini"
    loaded = load_config(str(path), ["method=fedavg_ta"])
    assert loaded.client.lr == 0.004 and loaded.aggregator.build().scale == 0.6
    assert load_config(str(path), ["method=fedavg"]).aggregator.build().server_lr == 1.7


def test_a_preset_without_validation_rows_needs_validation_named(tmp_path):
    """tiny provides no validation rows (mini does: its world's): one line naming --validation."""
    from harness.core.errors import ConfigError
    from harness.core.presets import PRESETS
    from harness.tune.runner import TuneConfig, base_overrides
    assert PRESETS["mini"].validation and PRESETS["tiny"].validation is None
    with pytest.raises(ConfigError, match="model.preset=tiny has none: give --validation DIR"):
        base_overrides(TuneConfig(config="tiny", methods=["fedavg"], seeds=[1000], overrides=[f"data.root={tmp_path}"]))
