"""The benchmarks (:mod:`harness.core.benchmarks`) as lmms-eval tasks, built once per process and evaluated
many times (SPEC 6). Metrics recorded: every numeric one a task reports (MME: its perception and
cognition scores; mmbench without the xlsx submission); with a judge mmbench_en_dev extracts answers
through it, without one lmms-eval's mmbench_en_dev_static runs and the record's note names it.

Every task runs through a generated YAML that ``include``s the installed task (so lmms-eval's own
prompts, scoring and aggregation run), renamed ``fedma_<task>``: with ``data_root`` it reads
``DATA_ROOT/<dataset>.parquet`` (datasets: pope, mme, mmbench_en_dev, seedbench, mmvp, mmvet,
llava_in_the_wild) instead of the hub; mmbench drops its xlsx ``submission`` metric.

Without a judge, the judged benchmarks are not run and are recorded with value None (``n/a``): offline,
lmms-eval reports 0 (mmvet) or 100 (llava_in_the_wild) instead. A judge that does not answer a probe
request at start-up is treated the same way (note ``judge unreachable``).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import ConfigError
from harness.core.benchmarks import BENCHMARKS, PRIMARY   # a missing score is recorded under the primary metric
from harness.eval.judge import Judge, judge_env
from harness.core.threads import scoped

log = logging.getLogger(__name__)


MMBENCH_AGG = "lmms_eval.tasks.mmbench.en_utils.mmbench_aggregate_dev_results_{}"


@dataclass
class Planned:
    benchmark: str
    task: str | None          # the lmms-eval task that runs (None: not run)
    judged: bool                 # scored with the judge
    skip: str | None = None   # why the benchmark is n/a

    @property
    def local_name(self) -> str:
        return f"fedma_{self.task}"


def plan(benchmarks: Sequence[str], judge: Judge | None, judge_ok: bool) -> list[Planned]:
    out = []
    for name in benchmarks:
        if name not in BENCHMARKS:
            raise ConfigError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
        b = BENCHMARKS[name]
        if not b.judged:
            out.append(Planned(name, b.task, False))
        elif judge is not None and judge_ok:
            out.append(Planned(name, b.task, True))
        elif b.static:
            out.append(Planned(name, b.static, False))
        else:
            out.append(Planned(name, None, False, "no judge configured" if judge is None else "judge unreachable"))
    return out


def task_yaml(task: str, data_root: str | None) -> str:
    """A task YAML that includes the installed task, renamed, reading local parquet when data_root is set."""
    b = next(v for v in BENCHMARKS.values() if task in (v.task, v.static))
    lines = [f"include: {installed_task(task, b)}", f"task: fedma_{task}", "tag: []"]
    if data_root is not None:
        parquet = Path(data_root).resolve() / f"{b.dataset}.parquet"
        lines += ["dataset_path: parquet", "dataset_name: null", "dataset_kwargs:", "  data_files:",
                  f"    {b.split}: {parquet}", *b.local]
    if task.startswith("mmbench"):
        kind = "static" if task.endswith("static") else "eval"
        lines += ["metric_list:", "  - metric: gpt_eval_score", f"    aggregation: !function {MMBENCH_AGG.format(kind)}",
                  "    higher_is_better: true"]
    return "\n".join(lines) + "\n"


def installed_task(task: str, b) -> Path:
    """The task's YAML: the harness's own (harness/eval/tasks) or the one lmms-eval installed."""
    if b.shipped:
        from importlib.resources import files
        return Path(str(files("harness.eval.tasks") / b.shipped))
    import lmms_eval.tasks
    tasks_dir = Path(lmms_eval.tasks.__file__).parent
    names = {f"{task}.yaml", f"{task.replace('_', '-')}.yaml"}
    hits = sorted(p for n in names for p in tasks_dir.rglob(n) if _declares(p, task))
    hits = hits or sorted(p for p in tasks_dir.rglob("*.yaml") if _declares(p, task))
    if not hits:
        raise ConfigError(f"lmms-eval has no task {task!r} (looked under {tasks_dir})")
    return hits[0]


def _declares(path: Path, task: str) -> bool:
    return any(line.split(":", 1)[1].strip().strip("\"'") == task
               for line in path.read_text().splitlines() if line.startswith("task:"))


@contextlib.contextmanager
def single_process_env():
    """lmms-eval shards by RANK/WORLD_SIZE itself; the harness shards explicitly, so hide them."""
    saved = {k: os.environ.pop(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE") if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def working_dir(path: Path):
    """mmbench writes ./submissions/*.json into the CWD: keep that out of the user's directory."""
    return scoped(os.getcwd, os.chdir, path)


class Suite:
    """Tasks built once; ``evaluate(lm)`` scores a model and returns
    ``[(benchmark, metric, value or None, n, judge model or None, note)]``."""

    def __init__(self, benchmarks: Sequence[str], data_root: str | None = None, judge: Judge | None = None,
                 limit: int | None = None, workdir: str | None = None, judge_ok: bool | None = None):
        """``judge_ok``: the outcome of a judge probe made elsewhere (rank 0); None: probe here."""
        self.judge = judge
        self.limit = limit
        if judge_ok is None:
            judge_ok = judge is not None and judge.probe()
        if judge is not None and not judge_ok:
            log.warning("judge %s at %s did not answer; judged benchmarks are n/a", judge.model, judge.base_url)
        self.plan = plan(benchmarks, judge, judge_ok)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fedma-eval-"))
        if workdir is None:   # our own scratch directory (task YAML, mmbench's submission json): removed with us
            weakref.finalize(self, shutil.rmtree, str(self.workdir), True)
        (self.workdir / "tasks").mkdir(parents=True, exist_ok=True)
        runnable = [p for p in self.plan if p.task]
        for p in runnable:
            (self.workdir / "tasks" / f"{p.local_name}.yaml").write_text(task_yaml(p.task, data_root))
        if data_root is not None:   # local parquet: no download-count ping to the hub from datasets.load
            import datasets.config
            datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
        from lmms_eval.tasks import TaskManager, get_task_dict
        tm = TaskManager("WARNING", include_path=str(self.workdir / "tasks"), include_defaults=False)
        with judge_env(judge), working_dir(self.workdir):
            self.tasks = {p.benchmark: get_task_dict([p.local_name], tm) for p in runnable}
        for p in runnable:
            for t in self.tasks[p.benchmark].values():
                t.set_config(key="num_fewshot", value=0)
                t.set_fewshot_seed(seed=1234)
                if p.judged and judge is not None and p.task.startswith("mmbench"):
                    judge.patch_mmbench(t)

    def docs(self, benchmark: str) -> int:
        tasks = self.tasks.get(benchmark, {})
        n = sum(len(t.eval_docs) for t in tasks.values())
        return min(n, self.limit) if self.limit else n

    def evaluate(self, lm, judged: bool | None = None) -> list[tuple]:
        """Score ``lm``; ``judged=False``/``True`` restricts to the judge-free/judged benchmarks."""
        from lmms_eval import evaluator
        out = []
        for p in self.plan:
            if judged is not None and p.judged != judged:
                continue
            if p.task is None:
                if judged is not True:
                    out.append((p.benchmark, PRIMARY[p.benchmark], None, 0, None, f"n/a: {p.skip}"))
                continue
            td = self.tasks[p.benchmark]
            lm.task_dict = {name: t.dataset for name, t in td.items()}
            with judge_env(self.judge if p.judged else None), single_process_env(), working_dir(self.workdir):
                res = evaluator.evaluate(lm=lm, task_dict=td, limit=self.limit, bootstrap_iters=0, log_samples=False,
                                         verbosity="WARNING", distributed_executor_backend="torchrun")
            out += self._records(p, res)
        return out

    def _records(self, p: Planned, res: dict) -> list[tuple]:
        wanted = BENCHMARKS[p.benchmark].metrics
        judge = self.judge.model if p.judged else None
        note = f"lmms-eval task {p.task}"
        rows = []
        for task_name, metrics in (res or {}).get("results", {}).items():
            n = (res.get("n-samples", {}).get(task_name) or {}).get("effective", self.docs(p.benchmark))
            for key, value in metrics.items():
                metric, _, _flt = key.partition(",")
                if key == "alias" or "_stderr" in metric or metric == "submission" or (wanted and metric not in wanted):
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    value = None
                rows.append((p.benchmark, metric, value, n, judge, note))
        if not rows:
            rows.append((p.benchmark, PRIMARY[p.benchmark], None, 0, judge, f"{note}: no result"))
        return rows
