"""``fedma eval CHECKPOINT_OR_RUN_DIR --tasks pope,mme,...``: score projectors with lmms-eval; and
``fedma eval tasks --out DIR [--data-root DATA]``: the task folder for lmms-eval's own command line.

The target is a projector ``.safetensors`` file, a round checkpoint directory, or a run directory (its
latest checkpoint; every client's projector for ``local``). The model preset, eval and judge settings
come from the checkpoint's config when it has one; the options below override them. Records (the
run store's schema) are appended to ``--out`` (default: ``RUN/eval_records.jsonl`` for a run or a
checkpoint, ``./eval_records.jsonl`` for a file) and printed as a table, missing values as ``n/a``.
No heavy import happens at module level.
"""
from __future__ import annotations

import os
from pathlib import Path

from harness.core.rundir import is_checkpoint

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled",
           "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}


def add_parser(p) -> None:
    p.add_argument("target", help="projector .safetensors, checkpoint directory or run directory; or 'tasks' "
                   "to write lmms-eval task YAMLs (--out DIR, --data-root DATA)")
    p.add_argument("--tasks", default=None,
                   help="comma-separated benchmarks: mmvet, mmbench, seed, pope, mme, mmvp, llava_bench "
                        "(default: eval.tasks + eval.final_tasks of the run's config)")
    p.add_argument("--preset", default=None, help="model preset (default: the run's, else tiny)")
    p.add_argument("--vision-path", default=None)
    p.add_argument("--llm-path", default=None)
    p.add_argument("--data-root", default=None, help="local benchmark copies (DATA/<dataset>.parquet); implies offline")
    p.add_argument("--judge-url", default=None, help="OpenAI-compatible base URL (…/v1); none: judged tasks are n/a")
    p.add_argument("--judge-model", default=None)
    p.add_argument("--judge-key-env", default=None, help="name of the environment variable holding the key")
    p.add_argument("--limit", type=int, default=None, help="at most this many samples per task")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=None, help="cap on generated tokens (default: the task's)")
    p.add_argument("--out", default=None, help="records file to append to")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    if args.target == "tasks":
        return cmd_tasks(args)
    if args.data_root:
        for k, v in OFFLINE.items():
            os.environ.setdefault(k, v)
    from harness.core.config import JobConfig, build_section
    from harness.eval.checkpoint import resolve
    target = resolve(args.target)
    cfg = build_section(JobConfig, target.config, "") if target.config else JobConfig()
    names = [t for t in (args.tasks.split(",") if args.tasks else list(cfg.eval.tasks) + list(cfg.eval.final_tasks)) if t]
    rows = evaluate_target(target, cfg, names, args)
    out = records_path(Path(args.target), args.out)
    from harness.core.records import append_records
    append_records(out, rows)
    show(rows, out)
    return 0


def records_path(target: Path, out) -> Path:
    if out:
        return Path(out)
    if target.is_file():
        return Path.cwd() / "eval_records.jsonl"
    run_dir = target.parent.parent if is_checkpoint(target) else target
    return run_dir / "eval_records.jsonl"


def evaluate_target(target, cfg, names, args) -> list:
    import torch

    from harness.eval.adapter import FedmaLlava
    from harness.eval.hook import score
    from harness.eval.judge import build_judge
    from harness.eval.suite import Suite
    from harness.model.build import build_bundle
    from harness.core.records import code_version, make_record
    m = cfg.model
    dtype = torch.float32 if m.dtype == "auto" and not torch.cuda.is_available() else \
        (torch.bfloat16 if m.dtype == "auto" else getattr(torch, m.dtype))
    bundle = build_bundle(args.preset or m.preset, args.vision_path or m.vision_path, args.llm_path or m.llm_path, dtype,
                          lora=m.lora)
    bundle.model.eval()
    judge = build_judge(args.judge_url or cfg.judge.base_url, args.judge_model or cfg.judge.model,
                        args.judge_key_env or cfg.judge.api_key_env)
    suite = Suite(names, args.data_root or cfg.eval.data_root, judge, args.limit or cfg.eval.limit)
    lm = FedmaLlava(bundle=bundle, batch_size=args.batch_size or cfg.eval.batch_size,
                    max_new_tokens=args.max_new_tokens or cfg.eval.max_new_tokens)
    base = {**target.base_record, "code_version": code_version()}
    rows = []
    for who, state in sorted(target.states.items(), key=lambda kv: str(kv[0])):
        lm.set_projector(state)
        for bench, metric, value, n, judge_name, note in score(suite, lm):
            rows.append(make_record(base, target.round, who, bench, metric, value, n, judge_name, note))
    return rows


def show(rows, out) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table("client", "benchmark", "metric", "value", "n", "judge", title=f"lmms-eval ({out})")
    for r in rows:
        value = "n/a" if r["value"] is None else f"{r['value']:.4g}"
        table.add_row(str(r["client"]), r["benchmark"], r["metric"], value, str(r["n"]), r["judge"] or "-")
    Console().print(table)


def cmd_tasks(args) -> int:
    """Write one task YAML per benchmark (and judge-free variant) into ``--out``: lmms-eval's installed task
    included and renamed ``fedma_<task>``, reading ``DATA/<dataset>.parquet`` when ``--data-root`` is
    given; print the command line that uses them."""
    from harness.core.errors import ConfigError
    from harness.core.benchmarks import BENCHMARKS
    from harness.eval.suite import task_yaml
    if not args.out:
        raise ConfigError("fedma eval tasks: --out DIR is required (the folder for lmms-eval's --include_path)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for b in BENCHMARKS.values():
        for task in filter(None, (b.task, b.static)):
            (out / f"fedma_{task}.yaml").write_text(task_yaml(task, args.data_root))
            names.append(f"fedma_{task}")
    print("\n".join(names))
    print(f"python -m lmms_eval --model fedma_llava --model_args projector=RUN_DIR --tasks {','.join(names[:3])},... "
          f"--include_path {out} --batch_size 8 --output_path OUT")
    return 0
