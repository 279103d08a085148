"""What a tuning run writes beside its record: trials.csv, tuned.yaml, tune.md and tune.json."""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import yaml

from harness.tune.trials import best_trials, read_trials

OBJECTIVE = "validation caption loss, AUC over rounds (mean of rounds 1..T), mean over the tuning seeds"


def write_outputs(cfg, out: Path) -> None:
    trials = sorted(read_trials(out / "trials.jsonl").values(), key=lambda t: (cfg.methods.index(t.method)
                                                                               if t.method in cfg.methods else 99, t.number))
    best = best_trials(trials)
    _write_csv(trials, out / "trials.csv")
    (out / "tuned.yaml").write_text(tuned_yaml(cfg, best))
    (out / "tune.md").write_text(markdown(cfg, trials, best))


def tuned_yaml(cfg, best) -> str:
    """``extends:`` the tuned config, the user's overrides, and each method's best point."""
    from harness.core.config import apply_override
    doc: dict = {"extends": cfg.config}
    for item in cfg.overrides:
        apply_override(doc, item)
    hparams = {m: best[m].params for m in cfg.methods if m in best and best[m].params}
    doc.setdefault("aggregator", {}).setdefault("hparams", {}).update(hparams)
    head = (f"# fedma tune: the best of {cfg.trials} trials per method ({OBJECTIVE}; tuning seeds "
            f"{', '.join(map(str, cfg.seeds))}, scenario {cfg.scenario.upper()}).\n"
            f"# A sweep or study runs the tuned methods with `extends:` this file (or as its config).\n")
    return head + yaml.safe_dump(doc, sort_keys=False)


def markdown(cfg, trials, best) -> str:
    from harness.core.registry import method_class
    from harness.methods.space import describe
    lines = ["# Tuning", "", f"Objective: {OBJECTIVE} (lower is better). {cfg.trials} trials per method (trial 0: "
             f"the defaults); tuning seeds {', '.join(map(str, cfg.seeds))}; scenario {cfg.scenario.upper()}.", "",
             "| method | space | trials | defaults (trial 0) | best | best point |", "|---|---|:-:|:-:|:-:|---|"]
    for m in cfg.methods:
        mine = [t for t in trials if t.method == m]
        zero = next((t for t in mine if t.number == 0 and t.state == "complete"), None)
        b = best.get(m)
        lines.append(f"| {m} | {describe(method_class(m).tunable)} | {len(mine)} | "
                     f"{_v(zero.value if zero else None)} | {_v(b.value if b else None)} | "
                     f"{_point(b.params) if b else 'n/a'} |")
    return "\n".join(lines) + "\n"


def _v(x) -> str:
    return "n/a" if x is None else f"{x:.5f}"


def _point(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "defaults"


def _write_csv(trials, path: Path) -> None:
    names = sorted({k for t in trials for k in t.params})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "trial", "state", "value", "seconds", *names])
        for t in trials:
            w.writerow([t.method, t.number, t.state, "" if t.value is None else f"{t.value:.8g}", t.seconds,
                        *(t.params.get(n, "") for n in names)])


def record_invocation(cfg, out: Path, began: float, trials: int) -> None:
    from harness.core.records import code_version
    from harness.core.machine import machine
    path = out / "tune.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"invocations": []}
    doc["settings"] = asdict(cfg)
    doc["invocations"].append({"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(began)),
                               "code_version": code_version(), "wall_s": round(time.time() - began),
                               "trials": trials, "machine": machine()})
    tmp = path.with_name(".tune.json.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)
