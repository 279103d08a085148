"""What ``fedma eval`` scores: a projector file, a round checkpoint, or a run directory.

- ``X.safetensors``: one projector, scored as ``global``;
- ``OUT/checkpoints/round_NNN``: that round's global projector, or every client's for a method that keeps
  one per client (``local``);
- ``OUT`` (a run directory): its latest complete checkpoint.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.errors import ConfigError


@dataclass
class Target:
    states: dict[object, dict[str, torch.Tensor]]       # "global" or client id -> projector
    round: int = 0
    config: dict | None = None
    base_record: dict = field(default_factory=dict)


def resolve(path) -> Target:
    from safetensors.torch import load_file

    from harness.checkpoint import latest_checkpoint
    path = Path(path)
    if path.is_file():
        return Target({"global": load_file(str(path))})
    if not path.is_dir():
        raise ConfigError(f"{path} is neither a projector .safetensors file, a checkpoint nor a run directory")
    if not (path / "state.json").exists():
        latest = latest_checkpoint(path)
        if latest is None:
            raise ConfigError(f"{path} holds no complete checkpoint (checkpoints/round_*/state.json)")
        path = latest
    state = json.loads((path / "state.json").read_text())
    states = client_models(path) or {"global": load_file(str(path / "projector.safetensors"))}
    cfg = state.get("config") or {}
    base = {"run_id": path.parent.parent.name, "method": state.get("method"),
            "scenario": cfg.get("data", {}).get("scenario"), "seed": cfg.get("federation", {}).get("seed"),
            "config_hash": state.get("config_hash")}
    return Target(states, int(state.get("round", 0)), cfg or None, base)


def client_models(checkpoint: Path) -> dict:
    """The per-client projectors of a method that keeps one per client (Local: ``own/<k>/<tensor>`` in its
    server state; older checkpoints kept them in ``clients.safetensors``); {} for any other method."""
    from safetensors.torch import load_file

    from harness.aggregator import unflatten_clients
    flat = {}
    for name in ("clients.safetensors", "aggregator.safetensors"):
        if (checkpoint / name).is_file():
            flat.update(load_file(str(checkpoint / name)))
    return dict(sorted(unflatten_clients("own", flat).items()))


def load_projector(path) -> dict[str, torch.Tensor]:
    target = resolve(path)
    if list(target.states) != ["global"]:
        raise ConfigError(f"{path} holds one projector per client ('local'); pass one client's file")
    return target.states["global"]
