"""Federations in parallel worker processes with live progress rows: the demo's, the study's and the
tuner's runs (one thread per worker: on 2 cores, two one-thread runs side by side finish about 1.5x
sooner than one two-thread run). Below the demos, so the stage-1 and stage-2 demos both use it."""
from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

SYNTHETIC_NOTE = ("Fed-MA-mini: the world is synthetic (five generated domains, a tiny pretrained LLaVA); "
                  "its numbers are not comparable with the paper's.")


def run_method(run_dir: str, overrides: list, queue, preset: str = "mini") -> float:
    """One method's federation in this worker process (one thread); returns its wall time. A run with
    checkpoints (an interrupted study) resumes from its last complete round."""
    import torch
    from harness.engine.checkpoint import latest_checkpoint
    from harness.core.config import load_config
    from harness.core.presets import completions
    from harness.engine.rounds import run_federation
    from harness.engine.runner import evaluation_hooks, quiet_libraries
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
