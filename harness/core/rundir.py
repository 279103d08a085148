"""The run folder: every path of a run directory, in one place, and the one ``load_projector``.

    OUT/config.yaml                       the resolved config (+ its hash as a comment)
    OUT/records.jsonl                     the result records (harness.core.records)
    OUT/timings.jsonl                     wall seconds per round phase (telemetry)
    OUT/machine.json                      where it ran
    OUT/launch.jsonl                      one line per start under Slurm (harness.core.launch_record)
    OUT/samples/round_TTT.json            which samples each client read (federation.log_samples)
    OUT/checkpoints/round_TTT/            {projector,aggregator}.safetensors, state.json, records.jsonl
    OUT/final/projector.safetensors       the global projector, or, for a method with per-client models,
    OUT/final/client_KK.safetensors       each client's own

Which projectors a checkpoint holds besides the global one is the method's to say (its
``evaluation_targets`` after loading its server state), never read from its state's key names.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

from harness.core.errors import ConfigError, DataError

CONFIG, RECORDS, TIMINGS, MACHINE, LAUNCH = "config.yaml", "records.jsonl", "timings.jsonl", "machine.json", "launch.jsonl"
CHECKPOINTS, FINAL, SAMPLES = "checkpoints", "final", "samples"
STATE = "state.json"                       # a checkpoint's non-tensor state
GLOBAL_PROJECTOR = "projector"             # final/ and checkpoint file stem of the global projector


class RunDir:
    """The paths of one run directory (nothing is created by asking)."""

    def __init__(self, root):
        self.root = Path(root)

    config = property(lambda self: self.root / CONFIG)
    records = property(lambda self: self.root / RECORDS)
    timings = property(lambda self: self.root / TIMINGS)
    machine = property(lambda self: self.root / MACHINE)
    launch = property(lambda self: self.root / LAUNCH)
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    final = property(lambda self: self.root / FINAL)
    samples = property(lambda self: self.root / SAMPLES)

    def checkpoint(self, round_: int) -> Path:
        return self.checkpoints / f"round_{round_:03d}"

    def samples_of(self, round_: int) -> Path:
        return self.samples / f"round_{round_:03d}.json"

    def final_file(self, name: str) -> Path:
        return self.final / f"{name}.safetensors"

    def final_projector(self) -> Path:
        return self.final_file(GLOBAL_PROJECTOR)

    def final_client(self, client: int) -> Path:
        return self.final_file(final_name(client))

    def final_clients(self) -> list:
        return sorted(self.final.glob("client_*.safetensors"))

    def has_final(self) -> bool:
        """A finished run: its global projector or its clients' own are in final/."""
        return self.final_projector().is_file() or bool(self.final_clients())

    def has_checkpoints(self) -> bool:
        return self.checkpoints.exists() and any(self.checkpoints.glob("round_*"))

    def complete_checkpoints(self) -> list:
        """Round checkpoints whose state.json was written (the rename makes them complete), oldest first."""
        return sorted(p for p in self.checkpoints.glob("round_*") if (p / STATE).exists())

    def latest_checkpoint(self) -> Optional[Path]:
        done = self.complete_checkpoints()
        return done[-1] if done else None


def timed_seconds(timings) -> Optional[float]:
    """The wall seconds a run's ``timings.jsonl`` adds up to (every phase of every round), or None without one."""
    timings = Path(timings)
    if not timings.is_file():
        return None
    return sum(v for line in timings.read_text().splitlines() for k, v in json.loads(line).items() if k != "round")


def final_name(target) -> str:
    """The final/ file stem of an evaluation target: ``projector`` for "global", ``client_KK`` for client K."""
    return GLOBAL_PROJECTOR if target == "global" else f"client_{int(target):02d}"


def is_run_dir(path) -> bool:
    return (Path(path) / RECORDS).is_file()


def is_checkpoint(path) -> bool:
    return (Path(path) / STATE).exists()


def read_state(checkpoint) -> dict:
    return json.loads((Path(checkpoint) / STATE).read_text())


def checkpoint_targets(checkpoint, state: Optional[dict] = None) -> Dict[object, dict]:
    """The projectors a round checkpoint's evaluation scores, as its method names them: {"global": theta},
    or one per client for a method that keeps per-client models (asked of the method, with its server
    state loaded: older checkpoints kept that state in ``clients.safetensors``, same keys)."""
    from safetensors.torch import load_file
    checkpoint = Path(checkpoint)
    state = read_state(checkpoint) if state is None else state
    tensors = {p.stem: load_file(str(p)) for p in sorted(checkpoint.glob("*.safetensors"))}
    global_state = tensors[GLOBAL_PROJECTOR]
    aggregator = per_client_method(state)
    if aggregator is None:
        return {"global": global_state}
    held = {**tensors.get("clients", {}), **tensors.get("aggregator", {})}
    aggregator.load_state_dict({"round": state.get("aggregator_round", 0), "tensors": held})
    return aggregator.evaluation_targets(global_state)


def per_client_method(state: dict):
    """The method that wrote a checkpoint, built from its saved config, when it keeps one model per client
    (None otherwise: its evaluation scores the global projector alone)."""
    from harness.core.config import AggregatorConfig, build_section
    from harness.core.registry import METHODS, method_class
    method = state.get("method")
    if method not in METHODS or not method_class(method).per_client_models:
        return None
    section = (state.get("config") or {}).get("aggregator") or {"method": method}
    return build_section(AggregatorConfig, section, "aggregator").build()


def load_projector(path, client: Optional[int] = None, final_only: bool = False) -> dict:
    """The projector ``path`` names: a ``.safetensors`` file; a run directory's final projector (``client``:
    that client's own, for a method with per-client models), or, unless ``final_only``, its latest complete
    checkpoint's; a round checkpoint's. One clear error naming what is there when it holds no such projector."""
    from safetensors.torch import load_file
    path = Path(path)
    if path.is_file():
        return load_file(str(path))
    if not path.is_dir():
        raise ConfigError(f"{path} is neither a projector .safetensors file, a checkpoint nor a run directory")
    run = RunDir(path)
    if run.has_final() or final_only:
        return load_file(str(final_file_of(run, client)))
    checkpoint = path if is_checkpoint(path) else run.latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(f"{path} holds no complete checkpoint (checkpoints/round_*/state.json)")
    targets = checkpoint_targets(checkpoint)
    return pick(targets, client, path)


def final_file_of(run: RunDir, client: Optional[int]) -> Path:
    path = run.final_client(client) if client is not None else run.final_projector()
    if client is None and not path.exists() and run.final_clients():
        raise ConfigError(f"{run.root}: a 'local' run has one projector per client; pass --client K")
    if not path.exists():
        raise DataError(f"{path} not found (has the run finished?)")
    return path


def pick(targets: dict, client: Optional[int], path) -> dict:
    if client is not None:
        if client not in targets:
            raise ConfigError(f"{path}: no projector of client {client}; it holds {', '.join(map(str, targets))}")
        return targets[client]
    if list(targets) != ["global"]:
        raise ConfigError(f"{path} holds one projector per client ('local'); pass one client's file")
    return targets["global"]
