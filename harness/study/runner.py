"""Running a study: the plan (every run it needs, once), the worlds, the runs, and its record of itself.

A run lives in ``OUT/runs/<setting>/<scenario>/<arm slug>/seed<k>``; it counts as finished when its
``final/`` projector exists or its records are archived (``OUT/records``, :mod:`harness.study.evidence`:
committed, they carry a study over to a fresh checkout or another machine, where ``runs/`` is gone). Rerunning the command skips finished runs, resumes interrupted ones from
their last complete round (the engine's bit-identical resume) and starts the rest, so a study that is
stopped (Ctrl-C, a reboot) continues where it stopped. ``OUT/study.json`` records the config, the
machine and the wall time of every invocation.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

from harness.core.machine import machine
from harness.core.rundir import RunDir
from harness.study.spec import Arm, StudyConfig, as_dict


@dataclass(frozen=True)
class RunSpec:
    setting: str
    scenario: str
    seed: int
    arm: Arm

    def path(self, out) -> Path:
        return Path(out) / "runs" / self.setting / self.scenario / self.arm.slug / f"seed{self.seed}"


def plan(cfg: StudyConfig) -> List[RunSpec]:
    """Every run the study's blocks need, each once, in the order they run: block by block and, within a
    block's setting and scenario, arm by arm (all of an arm's seeds together), so a study cut short has
    whole arms and its comparisons complete one at a time."""
    seen: Dict[RunSpec, None] = {}
    for block in cfg.blocks:
        arms = cfg.block_arms(block)
        for setting in block.settings:
            for scenario in block.scenarios:
                for a in arms:
                    for seed in block.seeds or cfg.seeds:
                        seen.setdefault(RunSpec(setting, scenario, seed, a))
    return list(seen)


def finished(run_dir: Path) -> bool:
    return RunDir(run_dir).has_final()


def archive_path(out, spec: RunSpec) -> Path:
    """Where a finished run's records are kept, compressed (the study's evidence)."""
    return Path(out) / "records" / spec.setting / spec.scenario / spec.arm.slug / f"seed{spec.seed}.jsonl.gz"


def done(out, spec: RunSpec) -> bool:
    return finished(spec.path(out)) or archive_path(out, spec).is_file()


def world_roots(cfg: StudyConfig, specs: List[RunSpec]) -> Dict[tuple, Path]:
    """{(setting, scenario, seed): data root}, built through the real pipeline or taken from the cache."""
    from harness.mini.scenario import ensure_scenario
    needed = dict.fromkeys((s.setting, s.scenario, s.seed) for s in specs)
    roots = {}
    for setting, scenario, seed in needed:
        st = cfg.settings[setting]
        root = ensure_scenario(scenario, per_round=st.per_round, rounds=cfg.rounds, seed=seed,
                               pool={"n": st.pool, "seed": 0}, clients=st.clients, alpha=st.alpha)
        if st.corrupt_clients:
            from harness.data.corrupt import corrupt_root
            tag = "-".join(map(str, sorted(st.corrupt_clients)))
            root = corrupt_root(root, Path(f"{root}-corrupt-c{tag}-r{st.corrupt_rate:g}"), st.corrupt_clients,
                                st.corrupt_rate, seed)
        roots[(setting, scenario, seed)] = root
    return roots


def overrides(cfg: StudyConfig, spec: RunSpec, root: Path, eval_overrides: list) -> list:
    st = cfg.settings[spec.setting]
    return [f"data.root={root}", f"data.scenario={spec.scenario}", *spec.arm.overrides(),
            f"federation.rounds={cfg.rounds}", f"federation.seed={spec.seed}", *eval_overrides,
            *([f"client.lr={st.client_lr}"] if st.client_lr is not None else []),
            *([f"federation.clients={st.clients}"] if st.clients != 5 else []), *st.overrides]


def run_study(cfg: StudyConfig, out, workers: int, console, dry_run: bool = False) -> List[RunSpec]:
    """Run what is not finished yet; returns the plan."""
    from harness.mini.workers import build_deepspeed_ops, run_all
    out = Path(out)
    specs = plan(cfg)
    todo = [s for s in specs if not done(out, s)]
    console.print(f"study {cfg.name}: {len(specs)} runs, {len(specs) - len(todo)} finished, {len(todo)} to run "
                  f"on {workers} worker(s)")
    if dry_run or not todo:
        return specs
    began = time.time()
    record_invocation(out, cfg, began, 0, 0.0, ended=False)     # the code version when the runs start
    with console.status("worlds (pool, embedding, clusters, splits) and benchmark sets, cached"):
        roots = world_roots(cfg, todo)
        scoring = evaluation(cfg)
        build_deepspeed_ops()
    jobs = {}
    for s in todo:
        run_dir = s.path(out)
        if not RunDir(run_dir).checkpoints.is_dir():     # never started, or died before its first round
            shutil.rmtree(run_dir, ignore_errors=True)
        jobs[str(run_dir)] = overrides(cfg, s, roots[(s.setting, s.scenario, s.seed)], scoring)
    seconds = run_all(jobs, workers, console, name=lambda d: str(Path(d).relative_to(out / "runs")))
    record_invocation(out, cfg, began, len(seconds), sum(seconds.values()))
    return specs


def evaluation(cfg: StudyConfig) -> List[str]:
    """Every run's eval overrides: the mini benchmarks at the study's scale every round, or none (pilots)."""
    if not cfg.benchmarks:
        return ["eval.tasks=[]", "eval.final_tasks=[]"]
    from harness.mini.bench import ensure_benchmarks, eval_overrides
    return eval_overrides(ensure_benchmarks(seed=0, scale=cfg.bench_scale))


def record_invocation(out: Path, cfg: StudyConfig, began: float, runs: int, run_seconds: float,
                      ended: bool = True) -> None:
    """One entry per invocation, written when its runs start (code version, machine; ``ended`` False) and
    completed when they end (wall time, runs, run seconds)."""
    path = out / "study.json"
    out.mkdir(parents=True, exist_ok=True)
    doc = json.loads(path.read_text()) if path.is_file() else {"invocations": []}
    doc["config"] = as_dict(cfg)
    from harness.core.records import code_version
    entry = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(began)), "code_version": code_version(),
             "wall_s": round(time.time() - began), "runs": runs, "run_seconds": round(run_seconds),
             "machine": machine(), "ended": ended}
    last = doc["invocations"][-1] if doc["invocations"] else None
    dangling = last is not None and last.get("ended") is False
    if ended and dangling:
        entry["code_version"] = last["code_version"]          # as recorded when the runs started
        doc["invocations"][-1] = entry
    else:
        if dangling:
            last["ended"] = "interrupted"                     # a start that never ended (killed)
        doc["invocations"].append(entry)
    tmp = path.with_name(".study.json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)
