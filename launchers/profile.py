"""Cluster profiles (``slurm/profiles/NAME.yaml``): what a job asks Slurm for.

Resolution order: the profile (named by ``launch.profile`` in the job config, or by ``--profile``), then
every ``launch.*`` value of the job config that differs from :class:`harness.core.config.LaunchConfig`'s
default, then explicit ``--set key=value`` overrides. One task per GPU (``tasks_per_node`` defaults
to ``gpus_per_node``, or 1 on CPU nodes); every task is one rank of the federation's world.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import List, Optional

import yaml

from harness.core.config import SlurmResources
from harness.core.errors import ConfigError
from harness.core.typecheck import bad_choice, unknown_key

PROFILE_DIR = files("launchers") / "profiles"     # package data (slurm/profiles links here)


@dataclass
class Profile(SlurmResources):
    name: str = "local"
    tasks_per_node: Optional[int] = None      # None: gpus_per_node, or 1 without GPUs
    signal_delay_s: int = 120
    max_num_timeout: int = 5
    array_parallelism: int = 4
    setup: List[str] = field(default_factory=list)

    def __post_init__(self):
        if self.tasks_per_node is None:
            self.tasks_per_node = self.gpus_per_node or 1
        for key in ("nodes", "tasks_per_node", "cpus_per_task", "mem_gb", "time_min", "array_parallelism"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"profile {self.name}: {key}={getattr(self, key)!r} must be an integer >= 1")
        if self.gpus_per_node < 0:
            raise ConfigError(f"profile {self.name}: gpus_per_node={self.gpus_per_node!r} must be >= 0")

    @property
    def world_size(self) -> int:
        return self.nodes * self.tasks_per_node

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def profile_names() -> List[str]:
    return sorted(p.name[:-5] for p in PROFILE_DIR.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str) -> Profile:
    return build_profile(profile_data(name_or_path))


def profile_data(name_or_path: str) -> dict:
    """The profile's YAML as a dict (unset keys stay unset, so later layers can fill them)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise bad_choice("profile", name_or_path, profile_names() + ["<path to a .yaml file>"])
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"profile {path}: the top level must be a mapping")
    return {"name": path.stem, **data}


def build_profile(data: dict) -> Profile:
    names = [f.name for f in dataclasses.fields(Profile)]
    for key in data:
        if key not in names:
            raise unknown_key(f"profile.{key}", names)
    return Profile(**data)


def parse_set(items: List[str]) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} must look like key=value (e.g. partition=gpu)")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
    return out


def resolve_profile(launch=None, name: Optional[str] = None, overrides: Optional[dict] = None) -> Profile:
    """Profile ``name`` (else ``launch.profile``, else ``local``) <- non-default ``launch`` fields <- overrides."""
    from harness.core.config import LaunchConfig
    data = profile_data(name or (launch.profile if launch else None) or "local")
    if launch is not None:
        default = LaunchConfig()
        for f in dataclasses.fields(LaunchConfig):
            if f.name != "profile" and getattr(launch, f.name) != getattr(default, f.name):
                data[f.name] = getattr(launch, f.name)
    data.update(overrides or {})
    return build_profile(data)
