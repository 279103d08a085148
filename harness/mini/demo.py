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
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from harness.core.rundir import RunDir
from harness.extras import require
from harness.registry import METHODS
from harness.report.runs import MAIN_VARIANTS, variant_overrides

SYNTHETIC_NOTE = ("Fed-MA-mini: the world is synthetic (five generated domains, a tiny pretrained LLaVA); "
                  "its numbers are not comparable with the paper's.")


def demo_names() -> list:
    """The nine methods, and Fed-CMP's named variants (the paper's literal sign OPM) as extra rows."""
    return [*METHODS, *MAIN_VARIANTS]


def run_method(run_dir: str, overrides: list, queue, preset: str = "mini") -> float:
    """One method's federation in this worker process (one thread); returns its wall time. A run with
    checkpoints (an interrupted study) resumes from its last complete round."""
    import torch
    from harness.checkpoint import latest_checkpoint
    from harness.config import load_config
    from harness.core.presets import completions
    from harness.engine import run_federation
    from harness.runner import evaluation_hooks, quiet_libraries
    torch.set_num_threads(1)
    quiet_libraries()
    resume = latest_checkpoint(Path(run_dir)) is not None
    to_log(Path(run_dir).with_suffix(".log"), append=resume)
    start = time.perf_counter()
    queue.put((run_dir, "resuming" if resume else "starting"))
    cfg = load_config(preset, overrides)
    extra = completions(cfg)              # as `fedma run mini`: the cached world of its seed when unset
    if extra:
        cfg = load_config(preset, [*overrides, *extra])
    run_federation(cfg, run_dir, resume=resume, eval_hook=evaluation_hooks,
                   progress=lambda line: queue.put((run_dir, line)))
    return time.perf_counter() - start


def to_log(path: Path, append: bool = False) -> None:
    """Send this worker's stdout and stderr (lmms-eval's and DeepSpeed's prints, tqdm bars) to ``path``,
    so the console shows only the parent's progress lines."""
    import os
    import sys
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    with open(path, "a" if append else "w") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)


def curves_of(run_dir: Path) -> list:
    from harness.records import read_records
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


def build_deepspeed_ops() -> None:
    """DeepSpeed JIT-compiles its CPU communication op in the first run of a fresh machine (about 30 s,
    facts/cpu-training.md s5); compile it here, while the LM pretrains on the other core."""
    from deepspeed.comm.torch import build_shm_op
    build_shm_op()


def run_all(jobs: dict, workers: int, console, name=None, preset: str = "mini") -> dict:
    """Run {run_dir: overrides} in parallel workers with live progress; {run_dir: seconds}. Up to
    ``ROWS`` jobs get a row each from the start; more (a study) show an overall bar and a row per
    running job. ``name(run_dir)`` labels a row (default: the last two path parts); ``preset``: the
    config every job's overrides apply to."""
    ctx = mp.get_context("spawn")
    queue = ctx.Manager().Queue()
    label = name or (lambda d: Path(d).parent.name + "/" + Path(d).name)
    compact = len(jobs) > ROWS
    with Progress(TextColumn("{task.fields[name]:<28}"), BarColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console) as bar, \
            ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        rows = RunRows(bar, label, compact, len(jobs))
        for d in ([] if compact else jobs):
            rows.row(d)
        futures = {d: pool.submit(run_method, d, o, queue, preset) for d, o in jobs.items()}
        seconds = {}
        while len(seconds) < len(futures):
            drain(queue, rows, wait=0.5)
            for d, f in futures.items():
                if d not in seconds and f.done():
                    seconds[d] = f.result()          # re-raises a worker's error
                    rows.done(d, seconds[d])
        drain(queue, rows, wait=0)
    return seconds


ROWS = 12


class RunRows:
    """The progress rows of :func:`run_all`: one per run, or (``compact``) an overall bar and one row
    per running run, removed when it ends."""

    def __init__(self, bar, label, compact: bool, total: int):
        self.bar, self.label, self.compact, self.tasks, self.finished = bar, label, compact, {}, set()
        self.overall = bar.add_task("", total=total, name=f"{total} runs") if compact else None

    def row(self, run_dir):
        if run_dir not in self.tasks:
            self.tasks[run_dir] = self.bar.add_task("queued", total=None, name=self.label(run_dir)[-28:])
        return self.tasks[run_dir]

    def update(self, run_dir, line: str) -> None:
        if run_dir not in self.finished:       # a late line must not bring a finished row back
            self.bar.update(self.row(run_dir), description=line[:60])

    def done(self, run_dir, seconds: float) -> None:
        self.finished.add(run_dir)
        if self.compact:
            self.bar.advance(self.overall)
            if run_dir in self.tasks:
                self.bar.remove_task(self.tasks.pop(run_dir))
        else:
            self.bar.update(self.row(run_dir), description=f"done ({seconds:.0f} s)", total=1, completed=1)


def drain(queue, rows: RunRows, wait: float) -> None:
    import queue as q
    try:
        while True:
            run_dir, line = queue.get(timeout=wait) if wait else queue.get_nowait()
            rows.update(run_dir, line)
            wait = 0
    except q.Empty:
        pass


def mini_demo(rounds: int = 10, seed: int = 0, out="results/demo", per_round: int = 256, methods=None,
              scenarios=("ii",), workers: int = 2, benchmarks: bool = True, instruct: bool = False,
              clients: int = 5, per_round_clients: int | None = None) -> dict:
    """Every method (and named variant, :func:`demo_names`) on each scenario; returns {scenario: {name:
    [held-out caption loss per round]}}. ``instruct``: then stage 2 from three of the projectors
    (:mod:`harness.mini.instruct_demo`, the first scenario's). ``clients`` other than 5: the clusters
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
        from harness.mini.instruct_demo import instruct_demo
        instruct_demo(out, seed, workers, console, scenario=list(roots)[0])
    from harness.observe.report import build_report
    page = build_report([str(out / "runs")], out, "Fed-MA-mini demo", SYNTHETIC_NOTE, stats)
    console.print(f"report: {page}")
    return curves


def check_instruct(methods: list) -> None:
    from harness.errors import ConfigError
    from harness.mini.instruct_demo import INITS
    missing = [m for m in INITS if m not in methods]
    if missing:
        raise ConfigError(f"--instruct starts stage 2 from {', '.join(INITS)}; --methods lacks {', '.join(missing)}")
