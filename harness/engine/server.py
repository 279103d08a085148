"""Rank 0's side of a federation: the global projector, the method's server rule (which also holds any
per-client state: MOON's previous projectors, Local's own models, SCAFFOLD's control variates), the
records, and their checkpoints. Everything here is plain state plus named steps that the round loop in
:mod:`harness.engine.rounds` calls in the paper's order; what a method needs is asked of the method."""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from harness.engine.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, save_tensors
from harness.engine.comm import plan_bytes, upload_bytes
from harness.core.rundir import RunDir, final_name
from harness.core.errors import ConfigError, HarnessError
from harness.core.records import append_records, make_record, write_records
from harness.core.threads import torch_threads
from harness.core.types import ClientReport, ClientResult, ClientUpdate, FailedClient
from harness.wire.hooks import ServerWire

log = logging.getLogger(__name__)


class Server:
    def __init__(self, cfg, run_dir: Path, init_state: Dict[str, torch.Tensor], base_record: dict):
        self.cfg, self.run_dir, self.base = cfg, Path(run_dir), base_record
        self.paths = RunDir(run_dir)
        self.method = cfg.aggregator.method
        self.aggregator = cfg.aggregator.build()
        self.aggregator.num_clients = cfg.federation.clients
        self.global_state = {k: v.clone() for k, v in init_state.items()}
        self.records: List[dict] = []
        self.next_round = 1
        self.last_round_summary: dict = {}
        self.sent: Dict[int, int] = {}            # bytes of each participant's plan this round
        self.accepted: List[ClientResult] = []    # the last round's aggregated results, in client order
        self.failures: List[FailedClient] = []    # and the clients it went on without (Flower's failures)
        self.loggers = None                       # harness.engine.loggers.Loggers when configured
        self.wire = ServerWire(cfg)               # decoding, unmasking, the clients' wire state

    # -- Algorithm 1, server steps -------------------------------------------------------------
    def participants(self, round_: int) -> List[int]:
        fed = self.cfg.federation
        everyone = list(range(fed.clients))
        if fed.clients_per_round is None or fed.clients_per_round >= fed.clients:
            return everyone
        rng = random.Random(f"participants-{fed.seed}-{round_}")
        return sorted(rng.sample(everyone, fed.clients_per_round))

    def round_package(self, round_: int) -> dict:
        """What every rank needs for the round: the global projector and each participant's plan."""
        clients = self.participants(round_)
        plans = self.aggregator.configure(round_, clients, self.global_state)
        self.sent = {k: plan_bytes(p) for k, p in plans.items()}
        return {"round": round_, "participants": clients, "global": self.global_state, "plans": plans,
                "client_state": self.wire.client_state(clients)}

    def aggregate(self, round_: int, reports: List[ClientReport]) -> None:
        # in client-id order, not the order the groups reported in: float sums then run in one order
        # whatever the rank layout, so 1, 2 and 5 processes give the same projector bit for bit
        reports = self.wire.receive(sorted(reports, key=lambda r: r.client_id), self.global_state)
        reports = [screen(r) for r in reports]
        ok = [r for r in reports if isinstance(r, ClientResult)]
        self.accepted, self.failures = ok, [r for r in reports if isinstance(r, FailedClient)]
        for r in reports:
            self._record_client(round_, r)
        if len(ok) < self.cfg.federation.min_clients:
            raise HarnessError(f"round {round_}: {len(ok)} client(s) left after faults, fewer than "
                               f"federation.min_clients={self.cfg.federation.min_clients}; the run stops "
                               f"with its last checkpoint intact")
        with server_threads(self.cfg.federation.server_threads):
            if self.wire.secure:   # the rule sees the survivors' sum only
                self.global_state = self.wire.aggregate_masked(self.aggregator, round_, ok, self.global_state)
            else:
                self.global_state = self.aggregator.aggregate(self.global_state, self._updates(round_, ok))
        self.add_records(self._aggregator_records(round_))
        self.last_round_summary = {"clients": len(ok), "of": len(reports),
                                   "loss": float(np.mean([r.loss for r in ok])),
                                   "align_error": float(np.mean([r.align_error for r in ok])),
                                   "skipped": sum(sum(r.skipped.values()) for r in reports)}

    def _updates(self, round_: int, ok: List[ClientResult]) -> List[ClientUpdate]:
        updates = [r.update() for r in ok]
        return self._privatize(round_, updates) if self.cfg.privacy.clip is not None else updates

    def _privatize(self, round_: int, updates: List[ClientUpdate]) -> List[ClientUpdate]:
        """DP-FedAvg's clip and noise on the uploads, and the privacy spent so far (harness.engine.privacy)."""
        from harness.engine import privacy
        p, fed = self.cfg.privacy, self.cfg.federation
        updates, clipped = privacy.privatize(self.global_state, updates, p, privacy.noise_generator(fed.seed, round_))
        sampled = min(fed.clients_per_round or fed.clients, fed.clients)
        eps = privacy.epsilon(p, round_, sampled, fed.clients)
        self.add_records([make_record(self.base, round_, "global", "privacy", "epsilon", eps, note=f"delta={p.delta}"),
                          make_record(self.base, round_, "global", "privacy", "clipped_fraction", clipped)])
        return updates

    def _record_client(self, round_: int, r: ClientReport) -> None:
        rec, k = self.add_records, r.client_id
        failed = isinstance(r, FailedClient)
        if failed and r.down:   # an outage (harness.engine.availability): nothing was sent either way
            rec([make_record(self.base, round_, k, "federation", "down", 1.0, note=r.error)])
            return
        sent = r.result if failed else r
        rec([make_record(self.base, round_, k, "comm", "bytes_down", float(self.sent.get(k, 0))),
             make_record(self.base, round_, k, "comm", "bytes_up", float(upload_bytes(sent)))])
        if sent is not None:
            rec([make_record(self.base, round_, k, "train", "seconds", sent.seconds)])
        if failed:
            log.warning("round %d: client %d dropped: %s", round_, k, r.error)
            rec([make_record(self.base, round_, k, "federation", "dropped", 1.0, note=r.error)])
            return
        rec([make_record(self.base, round_, k, "train", "loss", r.loss, r.num_samples),
             make_record(self.base, round_, k, "train", "align_error", r.align_error, r.num_samples)])

    def _aggregator_records(self, round_: int) -> List[dict]:
        """The server rule's own view of the round (Fed-CMP: the reliability weight omega of each
        client; momentum's beta, basis shift delta and relative change per fused block), so that a
        method's trajectory can be explained from its records, not only scored."""
        diag = self.aggregator.diagnostics
        recs = [make_record(self.base, round_, k, "server", "omega", w) for k, w in diag.get("omega", {}).items()]
        return recs + [make_record(self.base, round_, "global", "server", f"{name}/{block}", value)
                       for block, values in diag.items() if block != "omega" for name, value in values.items()]

    def add_records(self, records: List[dict]) -> None:
        self.records += records
        append_records(self.paths.records, records)
        if self.loggers is not None:
            self.loggers.log_records(records)

    def start_loggers(self) -> None:
        """TensorBoard / W&B / MLflow mirrors of the records (``logging.backends``), rank 0 only."""
        if self.cfg.logging.backends:
            from harness.engine.loggers import for_run
            self.loggers = for_run(self.cfg, self.run_dir, self.base)

    def evaluation_targets(self) -> Dict[object, Dict[str, torch.Tensor]]:
        """The projectors this round's evaluation scores (the method's choice: global, or each client's)."""
        return self.aggregator.evaluation_targets(self.global_state)

    # -- persistence ---------------------------------------------------------------------------
    def checkpoint(self, round_: int, extra_state: dict) -> None:
        agg = self.aggregator.state_dict()
        tensors = {"projector": self.global_state, "aggregator": agg["tensors"]}
        if self.wire.residuals:   # the clients' persistent wire state (topk's residuals)
            tensors["client_state"] = self.wire.state_tensors()
        state = {"round": round_, "aggregator_round": agg["round"], "method": self.method,
                 "config": self.cfg.to_dict(), "config_hash": self.cfg.hash(), "next_round": round_ + 1,
                 "rng": {"torch": torch.random.get_rng_state().tolist()},
                 **extra_state}
        save_checkpoint(self.run_dir, round_, tensors, state, self.records, self.cfg.federation.keep_checkpoints)
        self.next_round = round_ + 1

    def resume(self, allow_config_change: bool = False) -> Optional[int]:
        path = latest_checkpoint(self.run_dir)
        if path is None:
            return None
        tensors, state, records = load_checkpoint(path)
        if state["config_hash"] != self.cfg.hash() and not allow_config_change:
            raise ConfigError(f"--resume: {path} was written with config {state['config_hash']}, this run's is "
                              f"{self.cfg.hash()}; pass --allow-config-change to resume anyway")
        self.global_state = tensors["projector"]
        # checkpoints written before the method held its per-client state kept it in "clients" (same keys)
        held = {**tensors.get("clients", {}), **tensors.get("aggregator", {})}
        self.aggregator.load_state_dict({"round": state["aggregator_round"], "tensors": held})
        self.wire.load(tensors.get("client_state", {}))
        self.records = records
        write_records(self.paths.records, records)   # drop records of the unfinished round
        torch.random.set_rng_state(torch.tensor(state["rng"]["torch"], dtype=torch.uint8))
        self.next_round = state["next_round"]
        return state["round"]

    def write_final(self) -> Path:
        final = self.paths.final
        final.mkdir(parents=True, exist_ok=True)
        targets = self.evaluation_targets() if self.aggregator.per_client_models else {"global": self.global_state}
        for target, state in targets.items():
            path = self.paths.final_file(final_name(target))
            tmp = path.with_name(f".{path.name}.tmp")
            save_tensors(tmp, state)
            tmp.replace(path)
        return final


def screen(report: ClientReport) -> ClientReport:
    """A result the rule can aggregate stays as it is; one without samples or with non-finite values
    becomes a FailedClient carrying it (the result itself is not changed)."""
    if isinstance(report, FailedClient):
        return report
    if report.num_samples == 0:
        return FailedClient(report.client_id, "no samples this round", result=report)
    bad = [k for k, v in (report.state or {}).items() if not torch.isfinite(v).all()]   # None: masked
    return FailedClient(report.client_id, f"non-finite values in {bad[0]}", result=report) if bad else report


def server_threads(n: Optional[int]):
    """Every other rank waits while rank 0 aggregates, so it may use all the cores this process is
    allowed: torchrun sets OMP_NUM_THREADS=1, which would leave Fed-CMP's float64 eigendecompositions
    of a 4096x4096 projector on one core (minutes per round instead of seconds)."""
    return torch_threads(n or len(os.sched_getaffinity(0)))
