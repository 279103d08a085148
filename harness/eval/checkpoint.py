"""What ``fedma eval`` scores: a projector file, a round checkpoint, or a run directory.

- ``X.safetensors``: one projector, scored as ``global``;
- ``OUT/checkpoints/round_NNN``: that round's global projector, or every client's for a method that keeps
  one per client (``local``; the method names them, :func:`harness.core.rundir.checkpoint_targets`);
- ``OUT`` (a run directory): its latest complete checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.core.rundir import RunDir, checkpoint_targets, is_checkpoint, load_projector, read_state
from harness.core.errors import ConfigError


@dataclass
class Target:
    states: dict[object, dict[str, torch.Tensor]]       # "global" or client id -> projector
    round: int = 0
    config: dict | None = None
    base_record: dict = field(default_factory=dict)


def resolve(path) -> Target:
    path = Path(path)
    if path.is_file():
        return Target({"global": load_projector(path)})
    if not path.is_dir():
        raise ConfigError(f"{path} is neither a projector .safetensors file, a checkpoint nor a run directory")
    if not is_checkpoint(path):
        latest = RunDir(path).latest_checkpoint()
        if latest is None:
            raise ConfigError(f"{path} holds no complete checkpoint (checkpoints/round_*/state.json)")
        path = latest
    state = read_state(path)
    cfg = state.get("config") or {}
    base = {"run_id": path.parent.parent.name, "method": state.get("method"),
            "scenario": cfg.get("data", {}).get("scenario"), "seed": cfg.get("federation", {}).get("seed"),
            "config_hash": state.get("config_hash")}
    return Target(checkpoint_targets(path, state), int(state.get("round", 0)), cfg or None, base)
