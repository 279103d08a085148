"""``fedma demo``: the embedded default, Fed-MA-mini, end to end.

Builds (or reuses from the cache) the contrastive tiny CLIP, the pretrained tiny LLaVA and the pool;
runs the data pipeline for the scenario(s); then every method x ``rounds`` rounds x 5 clients through
the round engine, with the held-out caption loss (and, where provided, the mini benchmarks through
lmms-eval) every round; then ``fedma tables`` and ``fedma plot`` into ``out`` (``results/demo``).

Methods run in ``workers`` processes of one thread each: on 2 cores, two one-thread runs side by side
finish about 1.5x sooner than one two-thread run (the matrices are too small to use two threads well).
"""
from __future__ import annotations

import multiprocessing as mp
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console

from harness.core.rundir import RunDir
from harness.mini.workers import SYNTHETIC_NOTE, build_deepspeed_ops, run_all
from harness.core.extras import require
from harness.core.registry import METHODS
from harness.report.runs import MAIN_VARIANTS, variant_overrides

def demo_names() -> list:
    """The nine methods, and Fed-CMP's named variants (the paper's literal sign OPM) as extra rows."""
    return [*METHODS, *MAIN_VARIANTS]


def curves_of(run_dir: Path) -> list:
    from harness.core.records import read_records
    by_round = {}
    for r in read_records(RunDir(run_dir).records):
        if r["benchmark"] == "heldout" and r["value"] is not None:
            by_round.setdefault(r["round"], []).append(r["value"])
    return [sum(v) / len(v) for _, v in sorted(by_round.items())]


def prepare_world(scenarios: list, seed: int, per_round: int, rounds: int, console, benchmarks: bool,
                  clients: int = 5):
    """({scenario: data root}, eval overrides): everything the runs read, built or taken from the cache."""
    from harness.mini.bench import ensure_benchmarks, eval_overrides
    from harness.mini.models import ensure_clip, ensure_models, models_available
    from harness.mini.scenario import ensure_scenario
    clock = time.perf_counter()
    with console.status("tiny CLIP (contrastive), tiny LLaVA, pool, data pipeline, benchmark sets "
                        "(cached after the first time; the first build takes a few minutes)"):
        # a LM to pretrain and the CLIP + data pipeline each use one core: build them side by side
        # (the LM's text phase needs no CLIP; its grounding waits for it under the cache lock)
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
            models = None if models_available() else pool.submit(ensure_models)
            ensure_clip()
            roots = {s: ensure_scenario(s, per_round=per_round, rounds=max(rounds, 10), seed=seed, clients=clients)
                     for s in scenarios}
            bench = ensure_benchmarks(seed=seed) if benchmarks else None
            build_deepspeed_ops()
            models = models.result() if models else ensure_models()
    console.print(f"models {models}\n" + "\n".join(f"scenario {s.upper()}: {r}" for s, r in roots.items())
                  + (f"\nbenchmarks {bench}" if bench else "") + f"\n({time.perf_counter() - clock:.0f} s)")
    return roots, (eval_overrides(bench) if bench else ["eval.tasks=[]", "eval.final_tasks=[]"])


def mini_demo(rounds: int = 10, seed: int = 0, out="results/demo", per_round: int = 256, methods=None,
              scenarios=("ii",), workers: int = 2, benchmarks: bool = True, instruct: bool = False,
              clients: int = 5, per_round_clients: int | None = None) -> dict:
    """Every method (and named variant, :func:`demo_names`) on each scenario; returns {scenario: {name:
    [held-out caption loss per round]}}. ``instruct``: then stage 2 from three of the projectors
    (:mod:`harness.cli.instruct_demo`, the first scenario's). ``clients`` other than 5: the clusters
    dealt among them (Dirichlet, alpha 1), ``per_round_clients`` of them sampled each round."""
    # the plots and the HTML report at the end need the results and observe extras: one line now, not after the runs
    require("matplotlib", "plotly", "markdown")
    console = Console()
    console.print(f"[bold]{SYNTHETIC_NOTE}[/]")
    clock = time.perf_counter()
    roots, eval_overrides = prepare_world(list(scenarios), seed, per_round, rounds, console, benchmarks, clients)
    eval_overrides = [*eval_overrides, f"federation.clients={clients}",
                      *([f"federation.clients_per_round={per_round_clients}"] if per_round_clients else [])]
    out = Path(out)
    methods = list(methods or demo_names())
    if instruct:
        check_instruct(methods)
    jobs = {}
    for scenario, root in roots.items():
        for name in methods:
            run_dir = out / "runs" / scenario / name
            shutil.rmtree(run_dir, ignore_errors=True)
            jobs[str(run_dir)] = [f"data.root={root}", f"data.scenario={scenario}", *variant_overrides(name),
                                  f"federation.rounds={rounds}", f"federation.seed={seed}", *eval_overrides]
    run_all(jobs, workers, console)
    curves = {s: {m: curves_of(out / "runs" / s / m) for m in methods} for s in roots}
    from harness.mini.reference import random_init_scores
    from harness.mini.report import write_demo_outputs
    with console.status("scoring the random-initialized projector (round 0)"):
        references = {s: random_init_scores([f"data.root={r}", f"federation.seed={seed}", *eval_overrides],
                                            benchmarks=benchmarks) for s, r in roots.items()}
    stats = next(iter(roots.values())).parent.parent / "stats" / "table9.csv"   # WORK/<metric>/data
    write_demo_outputs(out, curves, rounds, console, SYNTHETIC_NOTE, stats, references)
    console.print(f"[green]demo done[/] in {time.perf_counter() - clock:.0f} s: {out}\n{SYNTHETIC_NOTE}")
    if instruct:
        from harness.cli.instruct_demo import instruct_demo
        instruct_demo(out, seed, workers, console, scenario=list(roots)[0])
    from harness.observe.report import build_report
    page = build_report([str(out / "runs")], out, "Fed-MA-mini demo", SYNTHETIC_NOTE, stats)
    console.print(f"report: {page}")
    return curves


def check_instruct(methods: list) -> None:
    from harness.core.errors import ConfigError
    from harness.cli.instruct_demo import INITS
    missing = [m for m in INITS if m not in methods]
    if missing:
        raise ConfigError(f"--instruct starts stage 2 from {', '.join(INITS)}; --methods lacks {', '.join(missing)}")
