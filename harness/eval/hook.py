"""The round engine's lmms-eval stage: ``lmms_hook(ctx) -> records`` after every round, on every rank.

- Tasks are built once per process (:func:`suite_for`, cached) and reused every round.
- Sharding is explicit: lmms-eval runs with a world of one on every rank (RANK/WORLD_SIZE hidden), and
  the adapter computes only its rank's share of each request list, all-gathered over the engine's gloo
  control group, so every rank holds the full answers and scores them identically. Judged benchmarks
  then run on rank 0 alone (the judge is called once per sample, not once per rank); rank 0 alone
  probes the judge and broadcasts the outcome, so every rank builds the same plan.
- ``local``: every client's projector is scored (records with ``client`` = its id); otherwise the
  global projector (``client`` = ``global``). Only rank 0's records are kept by the engine.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from harness.core.records import make_record

log = logging.getLogger(__name__)
_SUITES: dict[tuple, object] = {}
_ADAPTERS: dict[int, object] = {}


def suite_for(benchmarks: Sequence[str], data_root: str | None, judge, limit: int | None,
              judge_ok: bool | None = None, workdir: str | None = None):
    from harness.eval.suite import Suite
    key = (tuple(benchmarks), data_root, None if judge is None else (judge.base_url, judge.model), limit)
    if key not in _SUITES:
        _SUITES[key] = Suite(benchmarks, data_root, judge, limit, workdir=workdir, judge_ok=judge_ok)
    return _SUITES[key]


def adapter_for(bundle, device, batch_size: int, max_new_tokens: int | None):
    from harness.eval.adapter import FedmaLlava
    if id(bundle) not in _ADAPTERS:
        _ADAPTERS[id(bundle)] = FedmaLlava(bundle=bundle, device=str(device), batch_size=batch_size,
                                           max_new_tokens=max_new_tokens)
    return _ADAPTERS[id(bundle)]


def control_all_gather(world):
    import torch.distributed as dist

    def all_gather(obj) -> list:
        out = [None] * world.size
        dist.all_gather_object(out, obj, group=world.control)
        return out
    return all_gather


def score(suite, lm, world=None) -> list[tuple]:
    """Judge-free benchmarks sharded over the world, then judged ones on rank 0; rows on rank 0 only."""
    sharded = world is not None and world.size > 1
    lm.shard = (world.rank, world.size, control_all_gather(world)) if sharded else None
    try:
        rows = suite.evaluate(lm, judged=False)
    finally:
        lm.shard = None
    if world is not None and not world.is_server:
        return []
    return rows + suite.evaluate(lm, judged=True)


def benchmarks_of_round(cfg, round_: int) -> tuple[str, ...]:
    final = round_ == cfg.federation.rounds
    if not cfg.eval.every_round and not final:
        return ()
    return tuple(cfg.eval.tasks) + (tuple(b for b in cfg.eval.final_tasks if b not in cfg.eval.tasks) if final else ())


def enabled(cfg) -> bool:
    """Whether a run scores benchmarks (the engine has checked their data and lmms-eval beforehand)."""
    return bool(cfg.eval.tasks or cfg.eval.final_tasks)


def lmms_hook(ctx, max_new_tokens: int | None = None) -> list[dict]:
    """Records of this round's benchmarks (rank 0; [] elsewhere). ``max_new_tokens`` caps generation
    (default: ``cfg.eval.max_new_tokens`` if the config has it, else each task's own length)."""
    from harness.eval.judge import build_judge
    cfg, world = ctx.cfg, ctx.world
    max_new_tokens = max_new_tokens or getattr(cfg.eval, "max_new_tokens", None)
    names = benchmarks_of_round(cfg, ctx.round)
    if not names:
        return []
    judge = build_judge(cfg.judge.base_url, cfg.judge.model, cfg.judge.api_key_env)
    key = (names, cfg.eval.data_root, None if judge is None else (judge.base_url, judge.model), cfg.eval.limit)
    judge_ok = None
    if key not in _SUITES:   # rank 0 asks the judge once; everyone builds the same plan
        judge_ok = world.broadcast(judge.probe() if (judge and world.is_server) else None) if judge else False
    suite = suite_for(names, cfg.eval.data_root, judge, cfg.eval.limit, judge_ok=judge_ok)
    lm = adapter_for(ctx.trainer.bundle, ctx.trainer.device, cfg.eval.batch_size, max_new_tokens)
    targets = ctx.targets or {"global": ctx.global_state}
    records = []
    for who, state in sorted(targets.items(), key=lambda kv: str(kv[0])):
        lm.set_projector(state)
        for bench, metric, value, n, judge_name, note in score(suite, lm, world):
            records.append(make_record(ctx.base_record, ctx.round, who, bench, metric, value, n, judge_name, note))
    return records
