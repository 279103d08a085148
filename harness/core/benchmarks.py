"""The benchmark registry: one entry per benchmark, read by the config defaults, the eval suite, the result
tables and plots, the study and the mini world. Adding a benchmark is one entry here (and, for the mini
world, its set generator in :mod:`harness.mini.bench`). Importing this module imports nothing heavy.

    name         pretty        lmms-eval task (split)        judge  primary metric          mini set
    mmvet        MM-Vet        mmvet (test)                  yes    gpt_eval_score          mmvet_rows
    mmbench      MMBench       mmbench_en_dev (dev)          yes*   gpt_eval_score          mmbench_rows
    seed         SEED          seedbench (test)              no     seed_image              seed_rows
    llava_bench  LLaVA-Bench   llava_in_the_wild (train)     yes    gpt_eval_llava_all      llava_bench_rows
    pope         POPE          pope (test)                   no     pope_accuracy           pope_rows
    mme          MME           mme (test)                    no     mme_perception_score    mme_rows
    mmvp         MMVP          mmvp (train)                  no     mmvp_accuracy           mmvp_rows
    gqa          GQA           gqa (testdev)                 no     exact_match             gqa_rows      (stage 2, mini.instruct)
    ocrvqa       OCRVQA        ocrvqa (test; the harness's)  no     ocrvqa_accuracy         ocrvqa_rows   (stage 2, mini.instruct)
    (* without a judge lmms-eval's own judge-free mmbench_en_dev_static runs instead)

Stage-2 benchmarks (``stage="instruct"``: GQA and OCRVQA, the paper's Table 6) are never in the stage-1
defaults; the instruct presets ask for them. OCRVQA's task is the harness's own
(:mod:`harness.eval.tasks`); GQA reads its images from the local parquet instead of lmms-eval's second
hub download (``process_docs: null``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    pretty: str                               # as in the paper's tables
    task: str                                 # the lmms-eval task
    split: str
    dataset: str                              # local copies: DATA_ROOT/<dataset>.parquet
    primary: str                              # the metric the tables show
    judged: bool = False                      # needs an LLM judge
    static: Optional[str] = None              # the judge-free lmms-eval variant, if any
    metrics: Optional[Tuple[str, ...]] = None  # metrics recorded (None: every numeric one)
    fractions: Tuple[str, ...] = ()           # metrics lmms-eval reports in [0, 1] (tables print percent)
    best: float = 100.0                       # the primary metric's best possible value (percent scale)
    every_round: bool = True                  # scored every round by default (else the final round only)
    mini: Optional[str] = None                # the mini world's set generator in harness.mini.bench
    chance: Dict[str, float] = field(default_factory=dict)   # uniform random answers on the mini set
    stage: str = "pretrain"                   # "instruct": scored after stage 2 (never a stage-1 default)
    shipped: Optional[str] = None             # the harness's own task YAML in harness/eval/tasks
    local: Tuple[str, ...] = ()               # task YAML lines added when reading local parquet


BENCHMARKS: Dict[str, BenchmarkSpec] = {b.name: b for b in (
    BenchmarkSpec("mmvet", "MM-Vet", "mmvet", "test", "mmvet", "gpt_eval_score", judged=True, mini="mmvet_rows"),
    BenchmarkSpec("mmbench", "MMBench", "mmbench_en_dev", "dev", "mmbench_en_dev", "gpt_eval_score", judged=True,
                  static="mmbench_en_dev_static", mini="mmbench_rows", chance={"gpt_eval_score": 25.0}),
    BenchmarkSpec("seed", "SEED", "seedbench", "test", "seedbench", "seed_image", fractions=("seed_image", "seed_all"),
                  mini="seed_rows", chance={"seed_image": 0.25}),
    BenchmarkSpec("llava_bench", "LLaVA-Bench", "llava_in_the_wild", "train", "llava_in_the_wild",
                  "gpt_eval_llava_all", judged=True, every_round=False, mini="llava_bench_rows"),
    BenchmarkSpec("pope", "POPE", "pope", "test", "pope", "pope_accuracy", fractions=("pope_accuracy",),
                  mini="pope_rows", chance={"pope_accuracy": 0.5}),
    BenchmarkSpec("mme", "MME", "mme", "test", "mme", "mme_perception_score",
                  metrics=("mme_perception_score", "mme_cognition_score"), best=800.0, mini="mme_rows",
                  chance={"mme_perception_score": 300.0}),   # 4 categories x (acc 50 + acc+ 25)
    BenchmarkSpec("mmvp", "MMVP", "mmvp", "train", "mmvp", "mmvp_accuracy",
                  fractions=("mmvp_accuracy", "mmvp_pair_accuracy"), mini="mmvp_rows",
                  chance={"mmvp_accuracy": 0.5, "mmvp_pair_accuracy": 0.25}),
    BenchmarkSpec("gqa", "GQA", "gqa", "testdev", "gqa", "exact_match", fractions=("exact_match",),
                  mini="harness.mini.instruct:gqa_rows", stage="instruct", local=("process_docs: null",)),
    BenchmarkSpec("ocrvqa", "OCRVQA", "ocrvqa", "test", "ocrvqa", "ocrvqa_accuracy", fractions=("ocrvqa_accuracy",),
                  mini="harness.mini.instruct:ocrvqa_rows", stage="instruct", shipped="ocrvqa.yaml"),
)}
NAMES = tuple(BENCHMARKS)
PRETTY = {n: b.pretty for n, b in BENCHMARKS.items()}
PRIMARY = {n: b.primary for n, b in BENCHMARKS.items()}
FRACTION_METRICS = frozenset(m for b in BENCHMARKS.values() for m in b.fractions)
PRETRAIN = [n for n, b in BENCHMARKS.items() if b.stage == "pretrain"]
INSTRUCT = [n for n, b in BENCHMARKS.items() if b.stage == "instruct"]
PER_ROUND = [n for n in PRETRAIN if BENCHMARKS[n].every_round]
FINAL_ONLY = [n for n in PRETRAIN if not BENCHMARKS[n].every_round]
# the judge-free benchmarks of the mini world: scored by the demo and the study
MINI_SCORED = {n: b.primary for n, b in BENCHMARKS.items()
               if b.stage == "pretrain" and b.mini and b.chance and not (b.judged and not b.static)}


def spec(name: str) -> BenchmarkSpec:
    from harness.core.typecheck import bad_choice
    if name not in BENCHMARKS:
        raise bad_choice("benchmark", name, NAMES)
    return BENCHMARKS[name]


def configured(eval_cfg) -> list:
    """The benchmarks a run's eval section scores at some round."""
    return list(dict.fromkeys([*eval_cfg.tasks, *eval_cfg.final_tasks]))


def check_data(eval_cfg) -> None:
    """Fail in one line, before any training, when benchmarks are configured and their local data is not
    there (a run never reaches for a hub mid-training); a run without benchmarks passes."""
    from pathlib import Path

    from harness.core.errors import ConfigError
    import importlib.util
    names = configured(eval_cfg)
    if not names:
        return
    if importlib.util.find_spec("lmms_eval") is None:
        raise ConfigError(f"eval.tasks/final_tasks={names} are scored with lmms-eval, which is not installed: "
                          f"pip install 'fedma-harness[eval]' (or set eval.tasks=[] eval.final_tasks=[])")
    how = ("`fedma mini build` writes the mini sets; for the real ones put each task's data as DIR/<dataset>.parquet "
           "(README, Evaluation), or set eval.tasks=[] eval.final_tasks=[] to train without benchmarks")
    if eval_cfg.data_root is None:
        raise ConfigError(f"eval.tasks/final_tasks={names} need eval.data_root (local benchmark data): {how}")
    missing = [f"{BENCHMARKS[n].dataset}.parquet" for n in names
               if not (Path(eval_cfg.data_root) / f"{BENCHMARKS[n].dataset}.parquet").is_file()]
    if missing:
        raise ConfigError(f"eval.data_root={eval_cfg.data_root!r} lacks {', '.join(missing)} for {names}: {how}")
