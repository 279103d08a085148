"""The round engine: the paper's Algorithm 1 over one torchrun world split into client groups.

    for t in 1..T:
        rank 0 broadcasts theta (and per-client state) to every group
        each group trains its clients of the round, one after another, on DeepSpeed
        group leaders send (theta_k, n_k, e_k) to rank 0; rank 0 drops failed clients and aggregates
        rank 0 broadcasts the new theta; the evaluation hook scores it; rank 0 checkpoints
"""
from __future__ import annotations

import json
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from harness.core import errors
from harness.engine import faults, watchdog
from harness.engine.client import ClientTrainer, TrainSettings
from harness.core.config import ClientConfig, FederationConfig, JobConfig, dump_config
from harness.core.presets import template_of
from harness.core.machine import machine_line
from harness.core.rundir import RunDir
from harness.data.layout import read_index, read_manifest, round_dir, write_json
from harness.data.reader import SkipReport, num_steps, ordered_samples, rank_batches
from harness.engine.dist import World, assign_clients, init_world
from harness.engine.availability import is_up, late, speed_factor
from harness.core.errors import DataError, HarnessError
from harness.instruct.init import read_init, start_state
from harness.model.build import build_bundle, init_projector
from harness.core.records import code_version
from harness.engine.schedule import round_lrs
from harness.engine.server import Server
from harness.core.types import ClientReport, ClientResult, FailedClient
from harness.wire.hooks import client_send

log = logging.getLogger(__name__)


@dataclass
class RoundContext:
    """What an evaluation hook sees after round ``round``."""
    cfg: JobConfig
    world: World
    trainer: ClientTrainer
    round: int
    global_state: Dict[str, torch.Tensor]
    targets: Dict[object, Dict[str, torch.Tensor]] = field(default_factory=dict)   # what to score (method's choice)
    base_record: dict = field(default_factory=dict)


EvalHook = Callable[[RoundContext], List[dict]]


def check_data(cfg: JobConfig) -> Path:
    """Fail at once, before any model is built, when the data cannot serve this federation."""
    if cfg.data.root is None:
        raise DataError("data.root is not set (a prepared directory with client_KK/round_TT shards)")
    root = Path(cfg.data.root.format(scenario=cfg.data.scenario))
    manifest = read_manifest(root)
    fed = cfg.federation
    if manifest["clients"] < fed.clients or manifest["rounds"] < fed.rounds:
        raise DataError(f"data.root={str(root)!r} holds {manifest['clients']} clients x {manifest['rounds']} "
                        f"rounds; the config asks for {fed.clients} x {fed.rounds}")
    if cfg.eval.validation and not (Path(cfg.eval.validation) / "index.json").is_file():
        raise DataError(f"eval.validation={cfg.eval.validation!r}: no index.json there (a shard directory of "
                        f"validation pairs, e.g. what fedma tune writes; or eval.validation=null)")
    return root


def train_settings(cfg: JobConfig) -> TrainSettings:
    """What local training needs from the sections other than ``client`` (which the trainer takes whole)."""
    m = cfg.model
    checkpointing = m.gradient_checkpointing == "on" or (m.gradient_checkpointing == "auto" and m.lora.r > 0
                                                         and torch.cuda.is_available())
    return TrainSettings(bf16=model_dtype(cfg) == torch.bfloat16, max_caption_tokens=cfg.data.max_caption_tokens,
                         timeout_s=cfg.federation.client_timeout_s, objective=cfg.aggregator.build().client_objective(),
                         conversation=cfg.data.format == "conversation", template=template_of(m.preset),
                         max_text_tokens=cfg.data.max_text_tokens, gradient_checkpointing=checkpointing,
                         seed=cfg.federation.seed)


def model_dtype(cfg: JobConfig) -> torch.dtype:
    if cfg.model.dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, cfg.model.dtype)


def steps_per_round(root: Path, client: int, rounds: int, micro_batch: int, group: int, accum: int) -> Dict[int, int]:
    """Optimizer steps of each round of this client's stream (its schedule's length)."""
    return {t: math.ceil(num_steps(read_index(round_dir(root, client, t))["count"], micro_batch, group) / accum)
            for t in range(1, rounds + 1)}


def train_client(world: World, trainer: ClientTrainer, c: ClientConfig, fed: FederationConfig, root: Path,
                 package: dict, client: int) -> ClientReport:
    t = package["round"]
    group_size = len(world.groups[world.group_index])
    plan = steps_per_round(root, client, fed.rounds, c.batch_size, group_size, c.grad_accum)
    lrs = round_lrs(plan, t, c.schedule_scope, c.lr, c.warmup_ratio, c.scheduler)   # client.lr's one path
    report = SkipReport()
    samples = ordered_samples(round_dir(root, client, t), fed.seed, client, t, report,
                              conversation=trainer.settings.conversation)
    batches = rank_batches(samples, len(lrs) * c.grad_accum, c.batch_size, group_size,
                           world.groups[world.group_index].index(world.rank))
    plan = package["plans"][client]
    if not is_up(fed.availability, fed.seed, t, client):
        return FailedClient(client, f"down this round (federation.availability={fed.availability:g})", down=True)
    started = time.monotonic()
    if faults.active("raise", client=client, round=t):
        raise errors.ClientFailure(f"injected failure (client {client}, round {t})")
    if faults.active("slow", client=client, round=t):
        batches = (time.sleep(1.0) or b for b in batches)
    res = trainer.train(plan.start, package["global"], plan.extras, batches, lrs, stream=(client, t))
    if faults.active("nan", client=client, round=t):
        res.state["linear_1.weight"].fill_(float("nan"))
    seconds = (time.monotonic() - started) * speed_factor(fed.speed_spread, fed.seed, client)
    result = ClientResult(client, res.state, res.num_samples, res.align_error, res.loss, seconds, res.steps,
                          res.keys, res.uploads, dict(report.counts))
    too_late = late(seconds, fed.deadline_s)
    return FailedClient(client, too_late, result=result) if too_late else result


def train_my_clients(world: World, trainer: ClientTrainer, cfg: JobConfig, root: Path,
                     package: dict) -> List[ClientReport]:
    """This group's clients of the round, in waves; a failure becomes a FailedClient, not the run's end."""
    mine = assign_clients(package["participants"], len(world.groups))[world.group_index]
    reports = []
    for client in mine:
        try:
            reports.append(train_client(world, trainer, cfg.client, cfg.federation, root, package, client))
        except Exception as e:   # any failure of one client drops it for this round, not the run
            if not isinstance(e, errors.ClientFailure):
                log.warning("client %d failed in round %d", client, package["round"], exc_info=True)
            reports.append(FailedClient(client, f"{type(e).__name__}: {e}"))
    if world.is_leader:   # what each client puts on the wire: a compressed update or a masked vector
        reports = [client_send(cfg, package, r) for r in reports]
    return reports


def run_federation(cfg: JobConfig, run_dir, resume: bool = False, allow_config_change: bool = False,
                   eval_hook: Optional[EvalHook] = None, progress: Optional[Callable[[str], None]] = None):
    """Run (or resume) a federation; returns the final global projector on rank 0, None elsewhere."""
    from harness.core.benchmarks import check_data as check_benchmark_data, configured
    root = check_data(cfg)
    loaded = read_init(cfg.init.projector)
    if getattr(eval_hook, "scores_benchmarks", False):
        check_benchmark_data(cfg.eval)
        log.info("benchmarks: %s", ", ".join(configured(cfg.eval)) or
                 "none (eval.tasks=[] and eval.final_tasks=[]): only the held-out caption loss is scored")
    run_dir = Path(run_dir)
    fed = cfg.federation
    world = init_world(fed.clients, fed.client_timeout_s * fed.clients + 600)   # every wave may run late
    dog = watchdog.start(fed.heartbeat_s)       # a dead rank stops the others in seconds, not at that timeout
    bundle = build_bundle(cfg.model.preset, cfg.model.vision_path, cfg.model.llm_path, model_dtype(cfg),
                          lora=cfg.model.lora, seed=fed.seed)
    init = start_state(init_projector(bundle.model, fed.seed), loaded, cfg.init.projector, cfg.model.preset)
    trainer = ClientTrainer(bundle, cfg.client, train_settings(cfg), world.group, cfg.model.feature_cache)
    base = {"run_id": run_dir.name, "method": cfg.aggregator.method, "scenario": cfg.data.scenario,
            "seed": fed.seed, "config_hash": cfg.hash(), "code_version": code_version()}
    server = Server(cfg, run_dir, init, base) if world.is_server else None
    if server:
        start_server(server, cfg, run_dir, resume, allow_config_change)
        server.start_loggers()
    first = world.broadcast(server.next_round if server else None)
    for t in range(first, fed.rounds + 1):
        clock = PhaseClock()
        with clock("broadcast"):
            package = world.broadcast(server.round_package(t) if server else None)
        faults.maybe_kill("train", t)
        with clock("train"):
            results = train_my_clients(world, trainer, cfg, root, package)   # every rank of every group
        with clock("gather"):
            uploads = world.gather(results if world.is_leader else [])
        with clock("aggregate"):
            outcome = server_step(server, t, uploads) if server else None
        with clock("broadcast"):
            global_state, targets, error = world.broadcast(outcome)
        if error:
            raise HarnessError(error)
        with clock("evaluate"):
            records = eval_hook(RoundContext(cfg, world, trainer, t, global_state, targets, base)) if eval_hook else []
        if server:
            with clock("checkpoint"):
                server.add_records(records)
                log_samples(run_dir, cfg, t, server.accepted)
                server.checkpoint(t, {"skipped": _skipped(uploads)})
            clock.append_to(RunDir(run_dir).timings, t)
            if server.loggers:
                server.loggers.log(t, {f"timing/{k}_s": v for k, v in clock.seconds.items()})
            if progress:
                progress(summary_line(cfg, t, server, clock.total()))
        world.barrier()
    if server:
        server.write_final()
        if server.loggers:
            server.loggers.finish()
    if dog:
        dog.finish()
    if server:
        return server.evaluation_targets() if server.aggregator.per_client_models else server.global_state
    return None


class PhaseClock:
    """Wall seconds per phase of one round, appended by rank 0 to OUT/timings.jsonl (telemetry, not results)."""

    def __init__(self):
        self.seconds: Dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started

    def total(self) -> float:
        return sum(self.seconds.values())

    def append_to(self, path: Path, round_: int) -> None:
        with open(path, "a") as f:
            f.write(json.dumps({"round": round_, **{k: round(v, 6) for k, v in self.seconds.items()}}) + "\n")


def start_server(server: Server, cfg: JobConfig, run_dir: Path, resume: bool, allow_config_change: bool) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = RunDir(run_dir)
    if resume:
        server.resume(allow_config_change)
    elif paths.has_checkpoints():
        raise HarnessError(f"{run_dir} already holds checkpoints; pass --resume to continue it or choose "
                           f"another --out")
    from harness.core.benchmarks import configured
    skipped = "" if configured(cfg.eval) else "# benchmarks: none (eval.tasks and eval.final_tasks are empty)\n"
    paths.config.write_text(dump_config(cfg) + f"# config hash: {cfg.hash()}\n" + skipped)
    write_json(paths.machine, {"machine": machine_line()})


def server_step(server: Server, t: int, uploads: List[List[ClientReport]]):
    """Aggregate the round on rank 0; returns what every rank needs next (or the error that stops all)."""
    reports = [r for group in uploads for r in group]
    faults.maybe_kill("aggregate", t)
    try:
        server.aggregate(t, reports)
    except HarnessError as e:
        return None, None, str(e)
    return server.global_state, evaluation_targets(server, t), None


def evaluation_targets(server: Server, t: int):
    """What this round's evaluation scores: the method's targets and, in the final round with
    ``eval.per_client``, every aggregated client's own uploaded model as well (keyed by client id)."""
    targets = server.evaluation_targets()
    if not (server.cfg.eval.per_client and t == server.cfg.federation.rounds):
        return targets
    mine = {r.client_id: r.state for r in server.accepted}
    return {**(targets or {"global": server.global_state}), **mine}


def log_samples(run_dir: Path, cfg: JobConfig, t: int, accepted: List[ClientResult]) -> None:
    if cfg.federation.log_samples:
        keys = {r.client_id: r.keys for r in accepted}
        paths = RunDir(run_dir)
        paths.samples.mkdir(exist_ok=True)
        write_json(paths.samples_of(t), {str(k): v for k, v in keys.items()})


def _skipped(uploads) -> dict:
    return {str(r.client_id): r.skipped for group in uploads for r in group}


def summary_line(cfg: JobConfig, t: int, server: Server, seconds: float) -> str:
    s = server.last_round_summary
    skipped = f", {s['skipped']} bad records skipped" if s.get("skipped") else ""
    return (f"round {t}/{cfg.federation.rounds} {cfg.aggregator.method}: {s['clients']}/{s['of']} clients, "
            f"train loss {s['loss']:.4f}, align error {s['align_error']:.4f}{skipped}, {seconds:.1f} s")
